"""Checkpoints of a torch training loop, so a killed run resumes to the same final metrics.

A checkpoint holds everything the loop's future depends on: model, optimizer and scheduler
state, the global torch RNG (dropout), the early-stopping counter and the metric history
(the resumed MLflow run gets the whole curve, and the grokking events are computed over all
of it). The minibatch order is not stored: it is a pure function of the seed, so resuming
replays the batch generator up to the checkpointed step (cheap: one randperm per epoch).

Checkpoints are keyed by the spec hash (the same computation, whatever it is called or where
it is logged), live under ``grokspec_out/checkpoints/`` (git-ignored) in the working folder,
and are deleted once the run finishes. They are written only at evaluations, never from a
Ctrl-C handler: an interrupt can land inside ``optimizer.step()``, and a half-updated model
would resume to different numbers.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from grokspec.spec.experiment import Experiment
from grokspec.training.runner import RunContext

CHECKPOINT_DIR = Path("grokspec_out") / "checkpoints"


def checkpoint_path(experiment: Experiment, root: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment.name)[:60]
    return (root or CHECKPOINT_DIR) / f"{safe}-{experiment.spec_hash()}.pt"


class Checkpointer:
    """Save at evaluations every ``tracking.checkpoint_every`` steps; restore on ``--resume``."""

    def __init__(self, ctx: RunContext, model: torch.nn.Module, opt: Any, sched: Any) -> None:
        self.ctx, self.model, self.opt, self.sched = ctx, model, opt, sched
        self.every = ctx.experiment.tracking.checkpoint_every
        self.path = checkpoint_path(ctx.experiment)
        self._next = self.every or 0

    def restore(self) -> int:
        """Load the checkpoint when resuming; returns the step to continue after (0: none)."""
        if not self.ctx.resume:
            return 0
        if not self.path.exists():
            print(f"no checkpoint at {self.path}: starting from step 0", file=sys.stderr)
            return 0
        state = torch.load(self.path, map_location=self.ctx.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"].cpu())
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.ctx._held = int(state["held"])
        for entry in state["history"]:  # the resumed run carries the whole curve
            metrics = {k: v for k, v in entry.items() if k != "step"}
            self.ctx.history.append(dict(entry))
            self.ctx.log(metrics, int(entry["step"]))
            self.ctx.progress(int(entry["step"]), metrics)
        step = int(state["step"])
        if self.every:
            self._next = (step // self.every + 1) * self.every
        print(f"resumed from {self.path} at step {step}", file=sys.stderr)
        return step

    def skip(self, batches: Iterator[Any], start: int) -> Iterator[Any]:
        """The batch stream as it stands after ``start`` steps."""
        return itertools.islice(batches, start, None)

    def after_eval(self, step: int) -> None:
        """Called after each evaluation: save when a checkpoint is due."""
        if not self.every or step < self._next:
            return
        self._next = (step // self.every + 1) * self.every
        state = {
            "step": step,
            "spec_hash": self.ctx.experiment.spec_hash(),
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "held": self.ctx._held,
            "history": [dict(h) for h in self.ctx.history],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)  # never leave a torn checkpoint behind

    def finish(self) -> None:
        """The run completed: its checkpoint is no longer needed."""
        self.path.unlink(missing_ok=True)
