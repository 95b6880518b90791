"""Execution plugins, one per training regime (entry-point group ``grokspec.runners``)."""
