"""A local spool for a run whose tracking server went away: training is never lost to it.

When a write to an ``http(s)://`` tracking server fails because the server is unreachable
(it died, the network dropped), :class:`~grokspec.tracking.tracker.Tracker` stops talking to
it and appends every further write of that run — metric batches, params, tags, artifacts,
the final status — to ``grokspec_out/spool/<run_id>/`` in the working folder, in order:
``ops.jsonl`` (one JSON object per write), ``artifacts/<n>/`` (copies of the files) and
``meta.json`` (the URI and why spooling started). Training goes on at full speed.

:func:`replay` sends a spool to its server in the original order and removes it;
``grokspec sync`` replays every spool in the folder, and ``grokspec run`` / ``sweep`` replay
those of their tracking URI before they start. Progress is recorded per line
(``replayed``), so a replay interrupted half-way resumes without writing anything twice.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SPOOL_DIR = Path("grokspec_out") / "spool"
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # MLflow run ids: hex; never a path


class Spool:
    """The spooled writes of one run (inactive until :meth:`start`)."""

    def __init__(self, uri: str, run_id: str, root: Path | None = None) -> None:
        if not _RUN_ID.match(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        self.uri, self.run_id = uri, run_id
        self.dir = (root or SPOOL_DIR).absolute() / run_id
        self.active = False
        self._n_artifacts = 0

    def start(self, why: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = {"uri": self.uri, "run_id": self.run_id, "why": why, "since": time.time()}
        (self.dir / "meta.json").write_text(json.dumps(meta, indent=2))
        self.active = True

    def _append(self, op: dict[str, Any]) -> None:
        with open(self.dir / "ops.jsonl", "a") as fh:
            fh.write(json.dumps(op) + "\n")
            fh.flush()

    def batch(self, metrics: Iterable[Any] = (), params: Iterable[Any] = (),
              tags: Iterable[Any] = ()) -> None:
        """MLflow ``Metric`` / ``Param`` / ``RunTag`` entities, as one ``log_batch``."""
        self._append({
            "op": "batch",
            "metrics": [[m.key, m.value, m.timestamp, m.step] for m in metrics],
            "params": [[p.key, p.value] for p in params],
            "tags": [[t.key, t.value] for t in tags],
        })

    def artifacts(self, src: Path, artifact_path: str | None = None) -> None:
        """A copy of ``src`` (a file or a folder) to upload under ``artifact_path``."""
        self._n_artifacts += 1
        dest = self.dir / "artifacts" / str(self._n_artifacts)
        dest.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / src.name)
        self._append({"op": "artifacts", "dir": f"artifacts/{self._n_artifacts}",
                      "path": artifact_path})

    def terminate(self, status: str) -> None:
        self._append({"op": "terminate", "status": status, "end_time": int(time.time() * 1000)})


def pending(root: Path | None = None, uri: str | None = None) -> list[Path]:
    """Spool folders waiting for replay (only those of ``uri`` when given), oldest first."""
    base = (root or SPOOL_DIR).absolute()
    if not base.is_dir():
        return []
    out = []
    for meta in base.glob("*/meta.json"):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if uri is None or data.get("uri") == uri:
            out.append((data.get("since", 0.0), meta.parent))
    return [p for _, p in sorted(out)]


def replay(folder: Path, client: Any = None) -> int:
    """Send one spool to its tracking server in order; remove it when all went through.
    Returns the number of metric values replayed. Raises if the server refuses."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    meta = json.loads((folder / "meta.json").read_text())
    client = client or MlflowClient(tracking_uri=meta["uri"])
    run_id = meta["run_id"]
    done_file = folder / "replayed"
    done = int(done_file.read_text()) if done_file.exists() else 0
    ops_file = folder / "ops.jsonl"
    lines = ops_file.read_text().splitlines() if ops_file.exists() else []
    n_metrics = 0
    for i, line in enumerate(lines):
        if i < done or not line.strip():
            continue
        op = json.loads(line)
        if op["op"] == "batch":
            metrics = [Metric(k, float(v), int(ts), int(s)) for k, v, ts, s in op["metrics"]]
            params = [Param(k, v) for k, v in op["params"]]
            tags = [RunTag(k, v) for k, v in op["tags"]]
            for j in range(0, max(len(metrics), 1), 1000):
                client.log_batch(run_id, metrics=metrics[j : j + 1000],
                                 params=params if j == 0 else [], tags=tags if j == 0 else [])
            n_metrics += len(metrics)
        elif op["op"] == "artifacts":
            client.log_artifacts(run_id, str(folder / op["dir"]), op.get("path"))
        elif op["op"] == "terminate":
            client.set_terminated(run_id, status=op["status"], end_time=op.get("end_time"))
        done_file.write_text(str(i + 1))
    shutil.rmtree(folder)
    return n_metrics


def replay_pending(uri: str, echo: Callable[[str], None], root: Path | None = None) -> None:
    """Replay the spools of ``uri`` left by earlier runs (the server is up again)."""
    for folder in pending(root, uri):
        try:
            n = replay(folder)
        except Exception as exc:  # noqa: BLE001 - keep the spool; say why
            echo(f"could not replay the spooled run in {folder}: {type(exc).__name__}: "
                 f"{' '.join(str(exc).split())[:200]} (kept; retry with `grokspec sync`)")
            continue
        echo(f"replayed run {folder.name} from its local spool into {uri} ({n} metric values)")
