"""Every MLflow tag name grokspec writes or reads, defined once.

Writers (:mod:`grokspec.tracking.tracker`, the sweep's parent run) and readers
(:mod:`grokspec.tracking.store`, compare, phase diagrams, the paper report) import these
names, so a renamed tag cannot leave a reader silently finding nothing. This module imports
nothing (no MLflow): the spec layer (sweep expansion) uses it at validation time.
"""

from __future__ import annotations

# -- every grokspec run -------------------------------------------------------------------
LEARNER = "grokspec.learner"  # learner kind: transformer, mlp, gp, ...
DATASET = "grokspec.dataset"  # dataset family: modular, parity, ...
SPEC_HASH = "grokspec.spec_hash"  # identity of what is computed (the resolved spec sans tracking)
VERSION = "grokspec.version"
RUNNER = "grokspec.runner"  # entry point that trained it (gradient, gaussian_process, ...)
DEVICE = "grokspec.device"
SPLIT = "grokspec.split"  # fingerprint of the train/test tensors (also the dataset digest)
THREADS = "grokspec.threads"  # torch intra-op threads the run used
FAILURE_REASON = "grokspec.failure_reason"  # why a run is FAILED / KILLED
HOST = "grokspec.host"  # the machine a RUNNING run's process is on (liveness)
PID = "grokspec.pid"  # ... its process id
PID_START = "grokspec.pid_start"  # ... and that process's start time (pid reuse)
HEARTBEAT = "grokspec.heartbeat"  # last sign of life of a RUNNING run
HEARTBEAT_EVERY = "grokspec.heartbeat_every"  # seconds between two heartbeats of that run
PHASE = "grok.phase"  # comprehension | grokking | memorization | confusion (Liu et al.)
PHASE_RULE = "grok.phase_rule"  # the rule that made grok.phase: liu2022 | grokspec

# -- sweeps -------------------------------------------------------------------------------
SWEEP_HASH = "grokspec.sweep_hash"  # on the parent and every child: the set of point hashes
SWEEP_ROLE = "grokspec.sweep.role"  # "parent" on a sweep's parent run
SWEEP_POINT = "grokspec.sweep.point"  # a child's point index
SWEEP_VARIANT = "grokspec.sweep.variant"  # a child's variant name
SWEEP_AXES = "grokspec.sweep.axes"  # child: JSON of its axis values; parent: JSON axis list
SWEEP_SOURCE = "grokspec.sweep.source"  # the parent's spec file
SWEEP_FINISHED = "grokspec.sweep.finished"  # the parent's count of FINISHED points

# -- MLflow's own -------------------------------------------------------------------------
PARENT_RUN_ID = "mlflow.parentRunId"  # nests a child under its parent in the UI
NOTE = "mlflow.note.content"  # the run's description (markdown) in the UI
RUN_NAME = "mlflow.runName"
DATASET_CONTEXT = "mlflow.data.context"  # a dataset input's tag: what the run used it for
