"""Pure functions on tensors and metric histories: events, phases, progress measures."""
