"""Run a validated :class:`~grokspec.sweep.expand.Sweep`: one MLflow parent, one child a point.

The orchestrator lives in the calling process and is the only one that creates things in
the store: the SQLite database, the MLflow experiment and the parent run exist before any
worker starts (see :mod:`grokspec.sweep.executors` for why). Then:

- **Resume.** A sweep is identified by its hash (the set of its points' spec hashes); running
  the same sweep again reuses its parent run and skips every point that already has a
  FINISHED child (matched by the ``grokspec.spec_hash`` tag), re-running FAILED and KILLED
  ones. With ``resume=True`` those continue from their checkpoints. ``fresh=True`` starts a
  new parent and runs everything.
- **Failure.** A point that raises or diverges is a FAILED child with its reason (tag
  ``grokspec.failure_reason``); the others carry on; the parent ends FAILED saying how many.
- **Report.** The parent gets ``results.csv`` / ``results.md`` (one row per point: axes,
  status, train-fit step, test-fit ("grok") step, delay, final test accuracy, phase) and,
  with ``variants``, ``comparison.png``: test/acc and train/acc against step, one colour per
  variant, all on the identical split.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Param, RunStatus, RunTag

from grokspec.analysis.plots import overlay_figure, to_png
from grokspec.metrics import names
from grokspec.run import run_tags
from grokspec.sweep.executors import Executor, Outcome, SerialExecutor, Task
from grokspec.sweep.expand import TAG_SWEEP_HASH, Point, Sweep
from grokspec.tracking.tracker import Tracker, get_or_create_experiment, resolve_uri

TAG_ROLE = "grokspec.sweep.role"
PHASE_TAG = getattr(names, "PHASE_TAG", "grok.phase")  # set on each run by grokspec.run


@dataclass
class SweepResult:
    parent_run_id: str
    status: str
    outcomes: dict[int, Outcome] = field(default_factory=dict)  # point index -> outcome
    skipped: list[int] = field(default_factory=list)  # points already FINISHED earlier
    table: list[dict[str, Any]] = field(default_factory=list)


def run_sweep(
    sweep: Sweep,
    executor: Executor | None = None,
    device: str = "auto",
    resume: bool = False,
    fresh: bool = False,
    echo: Callable[[str], None] = print,
) -> SweepResult:
    """Run every point not finished yet; returns when all are done (or raises on Ctrl-C)."""
    executor = executor or SerialExecutor()
    first = sweep.experiment.tracking
    uri = resolve_uri(first.uri)
    client = MlflowClient(tracking_uri=uri)
    exp_id = get_or_create_experiment(client, first.experiment, uri)  # before any worker
    parent_id = None if fresh else _find_parent(client, exp_id, sweep)
    if parent_id is None:
        parent_id = _create_parent(client, exp_id, sweep)
    else:
        client.update_run(parent_id, status="RUNNING")
        echo(f"resuming sweep '{sweep.name}' in parent run {parent_id}")
    since = int(time.time() * 1000)
    finished = _finished_children(client, exp_id, parent_id)
    todo = [p for p in sweep.points if p.experiment.spec_hash() not in finished]
    result = SweepResult(parent_id, "RUNNING")
    result.skipped = [p.index for p in sweep.points if p.experiment.spec_hash() in finished]
    if result.skipped:
        echo(f"skipping {len(result.skipped)} finished point(s); {len(todo)} to run")
    tasks = plan_tasks(todo, sweep, parent_id, device, resume, uri, echo)
    by_hash = {p.experiment.spec_hash(): p for p in sweep.points}
    done = 0
    try:
        for _task, outcomes in executor.run(tasks):
            for out in outcomes:
                point = by_hash[out.spec_hash]
                if out.run_id is None:  # the run never got made, or its worker died
                    out.run_id = _mark_failed(client, exp_id, point, parent_id, since, out.reason)
                result.outcomes[point.index] = out
                done += 1
                echo(_progress_line(done, len(todo), point, out))
    except KeyboardInterrupt:
        _end(client, parent_id, "KILLED", "interrupted (Ctrl-C)")
        raise
    except BaseException as exc:
        _end(client, parent_id, "FAILED", f"{type(exc).__name__}: {exc}")
        raise
    result.table = _report(client, exp_id, parent_id, sweep)
    n_bad = sum(1 for row in result.table if row["status"] != "FINISHED")
    result.status = "FINISHED" if n_bad == 0 else "FAILED"
    reason = None if n_bad == 0 else f"{n_bad} of {len(sweep.points)} points did not finish"
    _end(client, parent_id, result.status, reason)
    return result


def plan_tasks(
    todo: list[Point],
    sweep: Sweep,
    parent_id: str,
    device: str,
    resume: bool,
    uri: str,
    echo: Callable[[str], None] = print,
) -> list[Task]:
    """One task per point, or per group of seeds when ``vectorize`` says to batch them.

    Every point gets the resolved tracking URI, so workers started elsewhere (Ray) log to
    the same store whatever their working folder or environment.
    """
    from grokspec.training.vectorized import spec_vectorizable, worth_it

    def pinned(p: Point) -> Any:
        tracking = p.experiment.tracking.model_copy(update={"uri": uri})
        return p.experiment.model_copy(update={"tracking": tracking})

    groups: list[list[Point]] = []
    setting = sweep.spec.vectorize
    for p in todo:
        if setting and groups and groups[-1][0].group_key() == p.group_key():
            groups[-1].append(p)
        else:
            groups.append([p])
    n_gpus = _gpu_count() if device == "auto" else 0
    cwd = str(Path.cwd())
    tasks: list[Task] = []
    notes: set[str] = set()
    for group in groups:
        exp = group[0].experiment
        why = spec_vectorizable(exp) if len(group) > 1 else "one seed"
        if why is None:
            pool = exp.dataset.pool_size()
            n_train = exp.dataset.n_train_for(pool) if pool else None
            if setting == "auto":
                why = worth_it(exp, n_train, device)
            elif worth_it(exp, n_train, device):
                notes.add(f"vectorize: true, but {worth_it(exp, n_train, device)}; "
                          "`vectorize: auto` would run these seeds one after another")
        if why is not None and len(group) > 1:
            notes.add(f"vectorize: not batching seeds: {why}")
        units = [group] if why is None else [[p] for p in group]
        for unit in units:  # several GPUs: spread the tasks over them round-robin
            dev = f"cuda:{len(tasks) % n_gpus}" if n_gpus > 1 else device
            tasks.append(Task([pinned(p) for p in unit], parent_id, dev, resume,
                              vectorize=len(unit) > 1, cwd=cwd))
    for note in sorted(notes):
        echo(note)
    return tasks


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA: run on CPU
        return 0


# ----------------------------------------------------------------------------- parent run


def _find_parent(client: MlflowClient, exp_id: str, sweep: Sweep) -> str | None:
    runs = client.search_runs(
        [exp_id],
        filter_string=f"tags.`{TAG_SWEEP_HASH}` = '{sweep.sweep_hash()}' "
        f"and tags.`{TAG_ROLE}` = 'parent'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def _create_parent(client: MlflowClient, exp_id: str, sweep: Sweep) -> str:
    tags = {
        TAG_SWEEP_HASH: sweep.sweep_hash(),
        TAG_ROLE: "parent",
        "grokspec.sweep.axes": json.dumps(sweep.axes),
        "grokspec.sweep.source": sweep.source,
    }
    run = client.create_run(exp_id, run_name=sweep.name, tags=tags)
    spec = sweep.spec
    params = {"sweep.points": len(sweep.points), "sweep.vectorize": spec.vectorize}
    params |= {f"sweep.grid.{k}": json.dumps(_values(v)) for k, v in spec.grid.items()}
    params |= {f"sweep.zip.{k}": json.dumps(_values(v)) for k, v in spec.zip.items()}
    if spec.seeds is not None:
        params["sweep.seeds"] = json.dumps(spec.seed_list(sweep.points[0].seed))
    if spec.variants:
        params["sweep.variants"] = json.dumps(list(spec.variants))
    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=items[i : i + 100])
    if Path(sweep.source).is_file():
        client.log_artifact(run.info.run_id, sweep.source)
    return run.info.run_id


def _values(axis: Any) -> list[Any]:
    from grokspec.sweep.spec import axis_values

    return axis_values(axis)


def _end(client: MlflowClient, run_id: str, status: str, reason: str | None) -> None:
    if reason:
        client.set_tag(run_id, "grokspec.failure_reason", reason[:5000])
    client.set_terminated(run_id, status=RunStatus.to_string(getattr(RunStatus, status)))


# ----------------------------------------------------------------------------- children


def _children(client: MlflowClient, exp_id: str, parent_id: str) -> list[Any]:
    return client.search_runs(
        [exp_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=50_000,
    )


def _finished_children(client: MlflowClient, exp_id: str, parent_id: str) -> dict[str, str]:
    """spec hash -> run id of the latest FINISHED child."""
    out = {}
    for run in _children(client, exp_id, parent_id):
        if run.info.status == "FINISHED" and "grokspec.spec_hash" in run.data.tags:
            out[run.data.tags["grokspec.spec_hash"]] = run.info.run_id
    return out


def _mark_failed(
    client: MlflowClient,
    exp_id: str,
    point: Point,
    parent_id: str,
    since: int,
    reason: str | None,
) -> str:
    """Make sure a point that failed has a FAILED child run carrying the reason."""
    h = point.experiment.spec_hash()
    runs = [
        r for r in _children(client, exp_id, parent_id)
        if r.data.tags.get("grokspec.spec_hash") == h and r.info.start_time >= since
    ]
    reason = reason or "failed"
    if runs:  # the run exists: close it if its worker died while it was RUNNING
        run = runs[-1]
        if run.info.status == "RUNNING":
            _end(client, run.info.run_id, "FAILED", reason)
        elif "grokspec.failure_reason" not in run.data.tags:
            client.set_tag(run.info.run_id, "grokspec.failure_reason", reason[:5000])
        return run.info.run_id
    exp = point.experiment
    tracker = Tracker(
        resolve_uri(exp.tracking.uri), exp.tracking.experiment, exp.tracking.run_name or exp.name,
        tags=run_tags(exp), parent_run_id=parent_id,
    )
    tracker.end("FAILED", reason)
    return tracker.run_id


def _progress_line(done: int, total: int, point: Point, out: Outcome) -> str:
    s = out.summary or {}
    extra = ""
    if out.status == "FINISHED":
        extra = (f"fit {s.get('train_fit_step')}, grok {s.get('test_fit_step')}, "
                 f"{s.get('phase', '')}")
    else:
        extra = (out.reason or "").splitlines()[0][:120] if out.reason else ""
    head = f"[{done}/{total}] {out.status:<8} #{point.index} {point.label}"
    return f"{head}: {extra} ({out.seconds:.1f}s)"


# ----------------------------------------------------------------------------- report


COLUMNS = ["point", "variant", "seed", "status", "train_fit_step", "test_fit_step", "delay",
           "final_test_acc", "phase", "run_id"]


def _report(client: MlflowClient, exp_id: str, parent_id: str, sweep: Sweep) -> list[dict]:
    """One row per point (its latest child run); logged as results.csv / results.md."""
    latest: dict[str, Any] = {}
    for run in _children(client, exp_id, parent_id):  # oldest first: later runs win
        h = run.data.tags.get("grokspec.spec_hash")
        if h and not (latest.get(h) and latest[h].info.status == "FINISHED"
                      and run.info.status != "FINISHED"):
            latest[h] = run
    axes = [a for a in sweep.axes if a not in ("variant", "seed")]
    rows = []
    for p in sweep.points:
        run = latest.get(p.experiment.spec_hash())
        m = run.data.metrics if run else {}
        row: dict[str, Any] = {"point": p.index, "variant": p.variant or "", "seed": p.seed}
        row |= {a: p.values.get(a) for a in axes}
        row |= {
            "status": run.info.status if run else "MISSING",
            "train_fit_step": _int(m.get(names.GROK_TRAIN_FIT_STEP)),
            "test_fit_step": _int(m.get(names.GROK_TEST_FIT_STEP)),
            "delay": _int(m.get(names.GROK_DELAY)),
            "final_test_acc": m.get(names.TEST_ACC),
            "phase": run.data.tags.get(PHASE_TAG, "") if run else "",
            "run_id": run.info.run_id if run else "",
        }
        rows.append(row)
    cols = ["point", "variant", "seed", *axes, *COLUMNS[3:]]
    files = {"results.csv": _csv(rows, cols).encode(), "results.md": _markdown(rows, cols).encode()}
    if sweep.spec.variants:
        files["comparison.png"] = _comparison_png(client, sweep, latest)
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            (Path(tmp) / name).write_bytes(content)
        client.log_artifacts(parent_id, tmp)
    client.log_batch(parent_id, tags=[RunTag("grokspec.sweep.finished",
                                             str(sum(r["status"] == "FINISHED" for r in rows)))])
    return rows


def _int(v: float | None) -> int | None:
    return None if v is None else int(v)


def _comparison_png(client: MlflowClient, sweep: Sweep, latest: dict[str, Any]) -> bytes:
    """test/acc and train/acc vs step, one colour per variant (its first point)."""
    runs: dict[str, list[dict[str, float]]] = {}
    for name in sweep.spec.variants:
        point = next((p for p in sweep.points if p.variant == name), None)
        run = latest.get(point.experiment.spec_hash()) if point else None
        if run is None:
            continue
        history: dict[int, dict[str, float]] = {}
        for metric in (names.TEST_ACC, names.TRAIN_ACC):
            for m in client.get_metric_history(run.info.run_id, metric):
                history.setdefault(m.step, {"step": m.step})[metric] = m.value
        runs[name] = [history[s] for s in sorted(history)]
    title = f"{sweep.name}: variants on the identical split"
    return to_png(overlay_figure(runs, (names.TEST_ACC, names.TRAIN_ACC), title))


def _csv(rows: list[dict], cols: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _markdown(rows: list[dict], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        return "-" if v is None or v == "" else f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown_table(rows: list[dict], sweep: Sweep, with_run_id: bool = False) -> str:
    """The results table as the CLI prints it."""
    axes = [a for a in sweep.axes if a not in ("variant", "seed")]
    cols = ["point", *(["variant"] if sweep.spec.variants else []), *axes, "seed", "status",
            "train_fit_step", "test_fit_step", "delay", "final_test_acc", "phase"]
    return _markdown(rows, cols + (["run_id"] if with_run_id else []))

