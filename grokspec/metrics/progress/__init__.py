"""One module per progress measure; each registers its :class:`MeasureDef` on import
(:mod:`grokspec.metrics.registry`). No torch at module level here: see the registry."""
