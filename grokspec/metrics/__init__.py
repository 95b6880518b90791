"""Pure functions on tensors and metric histories: events, phases, progress measures.

One module per concept, each unit-tested on constructed inputs with known answers:
``events`` (fit steps, delay, ratio), ``phases`` (Liu et al.), ``stages`` (Fan et al.),
``fourier`` (Nanda et al.), ``rank`` (Fan et al.), ``laziness`` (Kumar et al.), ``pathways``
(Li et al.), ``warning`` (the early-warning signal), ``subsets`` (per-subclass accuracy).
``measures`` wires them to a run, ``summary`` reads a finished history, ``spec`` is the
``analysis:`` section of a spec, ``names`` the metric names. See docs/analytics.md.
"""
