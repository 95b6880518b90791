"""Checkpoints: a killed run (Ctrl-C, SIGTERM, preemption) resumes to the same final metrics.

A checkpoint holds everything the loop's future depends on: the learner (one model or the
stacked members), optimizer, scheduler, Grokfast filter state, the global torch RNG (dropout)
and CUDA RNG, each member's batch order (generator, permutation, position), early-stopping
counter and metric history (the resumed MLflow run gets the whole curve, and the grokking
events are computed over all of it). The loop (:mod:`grokspec.training.loop`) composes the
state; this module names, writes, reads and deletes the file.

Checkpoints are keyed by the spec hash (the same computation, whatever it is called or where
it is logged), live under ``grokspec_out/checkpoints/`` (git-ignored) in the working folder,
and are deleted once the run finishes. They are written only at evaluations, never from a
signal handler: an interrupt can land inside ``optimizer.step()``, and a half-updated model
would resume to different numbers.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from grokspec.spec.experiment import Experiment

CHECKPOINT_DIR = Path("grokspec_out") / "checkpoints"


def checkpoint_path(experiments: Experiment | list[Experiment], root: Path | None = None) -> Path:
    """One file per computation: a run's spec hash, or the hash of a batch's member hashes."""
    exps = experiments if isinstance(experiments, list) else [experiments]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", exps[0].name)[:60]
    if len(exps) == 1:
        key = exps[0].spec_hash()
    else:
        joined = ",".join(e.spec_hash() for e in exps)
        key = "batch-" + hashlib.sha256(joined.encode()).hexdigest()[:16]
    return (root or CHECKPOINT_DIR) / f"{safe}-{key}.pt"


def rng_state() -> dict[str, Any]:
    return {
        "cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read back whole (truncated, overwritten, another
    format): refused, never loaded half."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"checkpoint {path} cannot be read ({why}): delete it to start from step 0 "
            f"(rm '{path}'), or run without --resume (its next checkpoint replaces it)")


def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The checkpoint's state, or :class:`CheckpointError`. torch's zip format checks each
    record's CRC-32 as it reads, so a cut or altered file fails here; a readable file without
    the loop's keys (another tool's) fails the format check."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every way a file can fail to load
        raise CheckpointError(path, " ".join(str(exc).split())[:200]) from None
    if not isinstance(state, dict) or not {"step", "learner", "members"} <= state.keys():
        raise CheckpointError(path, "not a grokspec checkpoint: step, learner or members "
                              "missing")
    return state


class Mirror(Protocol):
    """A copy of the checkpoint other machines can reach (grokspec.tracking.checkpoints)."""

    def push(self, path: Path) -> None: ...

    def pull(self, path: Path) -> bool: ...


class Checkpoint:
    """When to save (the first evaluation at or after every ``every`` steps) and the file;
    with a ``mirror``, each file written is pushed to it and a resume without a local file
    pulls it from there (a point continued on another node)."""

    def __init__(self, path: Path, every: int | None, mirror: Mirror | None = None) -> None:
        self.path, self.every, self.mirror = path, every, mirror
        self._next = every or 0

    def load(self, device: torch.device) -> dict[str, Any] | None:
        if not self.path.exists() and self.mirror is not None:
            self.mirror.pull(self.path)
        if not self.path.exists():
            print(f"no checkpoint at {self.path}: starting from step 0", file=sys.stderr)
            return None
        state = read_checkpoint(self.path, device)
        if self.every:
            self._next = (int(state["step"]) // self.every + 1) * self.every
        print(f"resumed from {self.path} at step {int(state['step'])}", file=sys.stderr)
        return state

    def due(self, step: int) -> bool:
        return bool(self.every) and step >= self._next

    def save(self, step: int, state: dict[str, Any]) -> None:
        assert self.every
        self._next = (step // self.every + 1) * self.every
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        try:
            torch.save({"step": step, **state}, tmp)
        except OSError as exc:  # a full disk: free what was written, name the file
            tmp.unlink(missing_ok=True)
            raise OSError(exc.errno, exc.strerror or str(exc), str(tmp)) from None
        except RuntimeError as exc:  # torch wraps the write error of its zip writer
            tmp.unlink(missing_ok=True)
            full = shutil.disk_usage(tmp.parent).free < 2**20
            if "No space left" in str(exc) or ("file write failed" in str(exc) and full):
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp)) from None
            raise
        os.replace(tmp, self.path)  # never leave a torn checkpoint behind
        if self.mirror is not None:
            self.mirror.push(self.path)

    def delete(self) -> None:
        """The run completed: its checkpoint is no longer needed."""
        self.path.unlink(missing_ok=True)
