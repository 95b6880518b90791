"""``grokspec sweep`` and ``grokspec phase-diagram``, and the sweep side of ``run``/``validate``.

Kept out of :mod:`grokspec.cli.main` so the shared command module only dispatches: a spec file
with a ``sweep:`` block is handed here by ``run`` and ``validate`` as well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from grokspec.spec.loading import SpecError, SpecSource


def add_execution_args(p: argparse.ArgumentParser) -> None:
    """Options of ``run`` and ``sweep`` that say where and how points execute."""
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="run N sweep points in parallel processes (torch threads per worker "
                   "= cores / N)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="torch intra-op threads per run (default: 1 for small models, which "
                   "run fastest on one; one per core for large ones; cores / N with "
                   "--workers N); the choice is printed and tagged grokspec.threads")
    p.add_argument("--executor", choices=["auto", "serial", "process", "ray"], default="auto",
                   help="serial | process (local pool) | ray (more than one machine); "
                   "auto: process when --workers > 1, else serial")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (auto, ray://host:10001); default: start a local "
                   "Ray instance. Several machines must log to an `mlflow server` "
                   "(tracking.uri: http://host:5000), not a SQLite file")
    p.add_argument("--shared-filesystem", action="store_true",
                   help="with --executor ray --address: every node sees the store's local "
                   "paths (a SQLite file, a server's local artifact root) at the same place, "
                   "e.g. one NFS mount; without it such a sweep is refused")
    p.add_argument("--resume", action="store_true",
                   help="continue killed runs from their last checkpoint "
                   "(tracking.checkpoint_every); sweeps always skip finished points")
    p.add_argument("--fresh", action="store_true",
                   help="sweeps: new parent run, run every point even if it finished before")


def add_only_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", action="append", default=[], metavar="NAME[,NAME...]",
                   help="sweeps: only these points, by variant name or point label (as "
                   "--dry-run lists them, e.g. 'grokfast_ema seed=1'); a re-run arm joins "
                   "the whole sweep's parent run")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def add_parsers(sub: argparse._SubParsersAction, add_spec_args: Callable) -> None:
    p = sub.add_parser("sweep", help="run every point of a spec's sweep: block")
    add_spec_args(p)
    add_only_arg(p)
    p.add_argument("--dry-run", action="store_true", help="list the points; run nothing")
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda")
    add_execution_args(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("phase-diagram", help="draw a sweep's phase diagram (Liu et al.)")
    p.add_argument("--experiment", required=True, help="MLflow experiment of the sweep")
    p.add_argument("--x", required=True, help="dotted param on the x axis, e.g. "
                   "train.optimizer.weight_decay")
    p.add_argument("--y", required=True, help="dotted param on the y axis, e.g. "
                   "dataset.train_fraction")
    p.add_argument("--metric", default="phase",
                   help="phase (majority label over seeds), or a summary metric shaded by "
                   "its median: grok/test_fit_step, grok/delay, test/acc, ...")
    p.add_argument("--parent", default=None, help="parent run id (default: the latest sweep "
                   "in the experiment whose children have both params)")
    p.add_argument("--uri", default=None, help="tracking URI (default: $MLFLOW_TRACKING_URI, "
                   "else ./mlflow.db)")
    p.add_argument("--out", default=None, help="PNG path (default: grokspec_out/"
                   "phase_diagram_<experiment>_<metric>.png)")
    p.set_defaults(func=cmd_phase_diagram)


def split_sweeps(
    paths: Sequence[str], overrides: Sequence[str]
) -> tuple[list[SpecSource], list[SpecSource]]:
    """Each file read once (:class:`SpecSource`), split into (files with a sweep: block, the
    others); every later step validates from that read. An unreadable file counts as a plain
    spec, whose validation then reports the problem."""
    sources = [SpecSource.read(path, list(overrides)) for path in paths]
    return [s for s in sources if s.is_sweep], [s for s in sources if not s.is_sweep]


def only_names(args: argparse.Namespace) -> list[str]:
    """``--only a,b --only c`` -> ["a", "b", "c"]."""
    return [n for text in getattr(args, "only", None) or [] for n in text.split(",") if n.strip()]


def _load(source: SpecSource, only: Sequence[str] = ()):  # noqa: ANN202
    """The validated sweep (its ``--only`` points), or None after printing why."""
    from grokspec.sweep.expand import sweep_from

    try:
        sweep = sweep_from(source)
    except SpecError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    if only:
        try:
            return sweep.select(list(only))
        except KeyError as exc:
            print(f"{source.path}: {exc.args[0]}", file=sys.stderr)
            return None
    return sweep


def validate_sweeps(sources: Sequence[SpecSource], only: Sequence[str] = (),
                    resolved: bool = False) -> int:
    """Validate every point of every sweep file; 0 if all are valid, else 2. ``resolved``
    prints each (``--only``-selected) point's resolved fields."""
    from grokspec.spec.experiment import flatten

    rc = 0
    for source in sources:
        sweep = _load(source, only)
        if sweep is None:
            rc = 2
            continue
        print(f"{source.path}: ok, sweep of {len(sweep.points)} valid points "
              f"(axes: {', '.join(sweep.axes) or 'none'}, hash {sweep.sweep_hash()})"
              + (f"; --only: {', '.join(p.label for p in sweep.points)}" if only else ""))
        if resolved:
            for point in sweep.points:
                print(f"  point #{point.index}: {point.label}")
                for k, v in flatten(point.experiment.resolved()).items():
                    print(f"    {k} = {v}")
    return rc


def run_sweeps(sources: Sequence[SpecSource], args: argparse.Namespace) -> int:
    """Run (or with --dry-run list) each sweep file; exit status as for ``grokspec run``."""
    sweeps = [_load(s, only_names(args)) for s in sources]
    if any(s is None for s in sweeps):
        return 2
    if getattr(args, "dry_run", False):  # as fast as validate: neither torch nor MLflow
        for sweep in sweeps:
            assert sweep is not None
            print(sweep.describe())
        return 0
    from grokspec.sweep.launch import markdown_table, run_sweep
    from grokspec.tracking.naming import ui_lines
    from grokspec.tracking.tracker import resolve_uri

    rc = 0
    for sweep in sweeps:
        assert sweep is not None
        res = sweep.spec.resources
        executor = make_executor(args.executor, args.workers, args.address, res.cpus, res.gpus,
                                 threads=args.threads,
                                 progress=sys.stderr.isatty() and not getattr(
                                     args, "no_progress", False))
        uri = resolve_uri(sweep.experiment.tracking.uri)
        print(f"sweep '{sweep.name}': {len(sweep.points)} points", file=sys.stderr)
        from grokspec.tracking.health import local_paths_problem, preflight

        if not preflight([uri], lambda m: print(m, file=sys.stderr)):
            return 2  # the store is unusable: one line said why, nothing was trained
        if args.executor == "ray" and args.address and not getattr(
                args, "shared_filesystem", False):
            problem = local_paths_problem(uri, sweep.experiment.tracking.experiment)
            if problem:  # workers on other nodes would write where nobody reads
                print(f"{sweep.source}: {problem}", file=sys.stderr)
                return 2
        try:
            result = run_sweep(sweep, executor, device=args.device, resume=args.resume,
                               fresh=args.fresh, echo=lambda m: print(m, file=sys.stderr))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (signals.Terminated)
            what = getattr(exc, "signame", "interrupted")
            print(f"\n{what}: the sweep's workers are stopped, its running points and parent "
                  "run are marked KILLED; run the same command again to finish the remaining "
                  "points", file=sys.stderr)
            return getattr(exc, "exit_code", 130)
        print(markdown_table(result.table, sweep))
        print(f"MLflow parent run {result.parent_run_id} in experiment "
              f"'{sweep.experiment.tracking.experiment}' ({result.status})")
        for line in ui_lines(uri, result.experiment_id, result.parent_run_id):
            print(line)
        if result.status != "FINISHED":
            rc = 1
    return rc


def cmd_sweep(args: argparse.Namespace) -> int:
    sweeps, plain = split_sweeps(args.specs, args.overrides)
    for source in plain:
        if source.error is not None:  # unreadable: say why, as validation would
            for problem in source.error.problems:
                print(problem, file=sys.stderr)
            continue
        print(f"{source.path}: has no sweep: block (use `grokspec run` for one experiment)",
              file=sys.stderr)
    if plain:
        return 2
    return run_sweeps(sweeps, args)


def cmd_phase_diagram(args: argparse.Namespace) -> int:
    from grokspec.analysis.phase_diagram import phase_diagram

    try:
        out = phase_diagram(args.experiment, args.x, args.y, metric=args.metric,
                            parent_run_id=args.parent, uri=args.uri, out=args.out)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out.table)
    print(f"wrote {out.path} (also logged to parent run {out.parent_run_id})")
    return 0


def make_executor(
    kind: str, workers: int = 1, address: str | None = None, cpus: float = 1.0,
    gpus: float = 0.0, threads: int | None = None, progress: bool = False,
) -> Any:
    """The executor the CLI asks for: serial | process | ray (``--workers N`` > 1 -> process).
    ``threads`` (``--threads``): torch threads per run; default: see each executor."""
    from grokspec.sweep.executors import ProcessExecutor, SerialExecutor
    from grokspec.sweep.ray_executor import RayExecutor

    if kind == "ray":
        ray_executor = RayExecutor(address, cpus, gpus)
        ray_executor.threads = threads
        return ray_executor
    if kind == "process" or (kind == "auto" and workers > 1):
        return ProcessExecutor(max(1, workers), threads)
    return SerialExecutor(threads, progress)
