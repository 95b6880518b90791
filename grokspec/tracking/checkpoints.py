"""Checkpoints another machine can reach: mirrored as run artifacts through a tracking server.

A checkpoint file lives on the node that wrote it (:mod:`grokspec.training.checkpoint`). On a
Ray cluster the point may continue elsewhere: grokspec re-queues a point whose node was lost
(``--resume`` semantics), and a user may ``--resume`` a sweep from another machine. With an
``http(s)://`` tracking URI every checkpoint written is therefore also uploaded as the run's
artifact ``checkpoint/<file>`` (the file name carries the spec hash), and a resume that finds
no local file downloads it from the newest *unfinished* run of the same spec hash in the
experiment. The server is the one place every node reaches, so no shared filesystem is
needed. With a local store (one machine) nothing is mirrored: the local file is the truth.

Cost: one upload per checkpoint (at the ``tracking.checkpoint_every`` cadence, never per
step). The artifact stays with its run after the run ends (MLflow has no artifact delete);
it is what a later resume of that run would need, and a FINISHED run's copy is never read.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from grokspec.tracking.health import is_http
from grokspec.tracking.store import RunStore
from grokspec.tracking.tracker import Tracker

FOLDER = "checkpoint"


class ArtifactMirror:
    """``push`` after each checkpoint write, ``pull`` when a resume finds no local file."""

    def __init__(self, tracker: Tracker, spec_hash: str) -> None:
        self.tracker, self.spec_hash = tracker, spec_hash

    def push(self, path: Path) -> None:
        self.tracker.log_file(path, FOLDER)

    def pull(self, path: Path) -> bool:
        """Download ``path``'s file from the newest unfinished run of this spec that has it
        (an earlier attempt that died or was stopped); True when it is now at ``path``."""
        store = RunStore(self.tracker.uri)
        for run in store.unfinished(self.tracker.experiment_id, self.spec_hash):
            if run.info.run_id == self.tracker.run_id:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                got = store.fetch_artifact(run.info.run_id, f"{FOLDER}/{path.name}", tmp)
                if got is None:  # that attempt saved none: try an older one
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(got, path)
            print(f"fetched checkpoint {path.name} from run {run.info.run_id} (tracking "
                  f"server)", file=sys.stderr)
            return True
        return False


def mirror_for(tracker: Tracker, spec_hash: str) -> ArtifactMirror | None:
    """A mirror when the tracking URI is a server other nodes share; None for a local store."""
    return ArtifactMirror(tracker, spec_hash) if is_http(tracker.uri) else None
