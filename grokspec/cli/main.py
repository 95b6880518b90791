"""Command line: ``grokspec validate | run | sweep | phase-diagram | compare | report | schema``.

Exit status: 0 ok, 1 the run failed (diverged or crashed), 2 invalid spec or usage,
130 interrupted. Spec errors print one ``FILE:LINE:COL: field: message`` line each and
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from grokspec.cli import compare as compare_cli
from grokspec.cli import gc as gc_cli
from grokspec.cli import report as report_cli
from grokspec.cli import sweep as sweep_cli
from grokspec.cli import sync as sync_cli
from grokspec.cli import ui as ui_cli
from grokspec.spec.experiment import Experiment, flatten, json_schema
from grokspec.spec.loading import SpecError, SpecSource


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", help="spec YAML file(s)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. --set train.optimizer.weight_decay=0.1 (value is YAML)",
    )


def _load_all(sources: Sequence[SpecSource]) -> list[Experiment] | None:
    """Validate the plain (no sweep: block) spec files, already read once."""
    experiments, failed = [], False
    for source in sources:
        try:
            experiments.append(source.experiment())
        except SpecError as exc:
            failed = True
            for problem in exc.problems:
                print(problem, file=sys.stderr)
    return None if failed else experiments


def cmd_validate(args: argparse.Namespace) -> int:
    sweeps, plain = sweep_cli.split_sweeps(args.specs, args.overrides)
    only = sweep_cli.only_names(args)
    if only and plain:
        print(f"{plain[0].path}: --only names sweep points, and this spec has no sweep: block",
              file=sys.stderr)
        return 2
    # every point of each sweep (the --only ones printed with --resolved)
    sweep_rc = sweep_cli.validate_sweeps(sweeps, only, args.resolved)
    experiments = _load_all(plain)
    if experiments is None or sweep_rc:
        return 2
    for source, exp in zip(plain, experiments, strict=True):
        print(f"{source.path}: ok ({exp.dataset.kind} x {exp.learner.kind}, "
              f"hash {exp.spec_hash()})")
        if args.resolved:
            for k, v in flatten(exp.resolved()).items():
                print(f"  {k} = {v}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    if args.markdown:
        from grokspec.spec.reference import spec_reference

        print(spec_reference(), end="")
    else:
        print(json.dumps(json_schema(), indent=2))
    return 0


def _resume_supported(experiments: Sequence[Experiment]) -> bool:
    """``--resume`` needs a runner that honours it (else the flag would be ignored)."""
    from grokspec.spec.features import feature_error, runner_class, runner_name, unsupported

    ok = True
    for exp in experiments:
        cls = runner_class(runner_name(exp))
        if unsupported(cls, {"resume": "--resume"}):
            print(f"error: {feature_error(runner_name(exp), cls, 'resume')}", file=sys.stderr)
            ok = False
    return ok


def cmd_run(args: argparse.Namespace) -> int:
    from grokspec.run import run_experiment
    from grokspec.tracking.naming import ui_lines
    from grokspec.tracking.tracker import resolve_uri
    from grokspec.training.signals import Terminated

    sweeps, plain = sweep_cli.split_sweeps(args.specs, args.overrides)
    experiments = _load_all(plain)
    if experiments is None:
        return 2
    if experiments and not _tracking_ready(experiments, args.resume):
        return 2
    if args.resume and not _resume_supported(experiments):
        return 2
    if args.resume and not _checkpoints_readable(experiments):
        return 2
    status = sweep_cli.run_sweeps(sweeps, args) if sweeps else 0  # a sweep: block runs the sweep
    if status == 2 or status >= 128:  # invalid, or stopped by a signal
        return status
    for exp in experiments:
        try:
            result = run_experiment(
                exp, device=args.device, progress=not args.no_progress, resume=args.resume,
                threads=args.threads,
            )
        except Terminated as exc:  # SIGTERM / SIGHUP: kill, timeout, Slurm, docker stop
            print(f"\n{exc.signame}: the MLflow run is marked KILLED", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("\ninterrupted: the MLflow run is marked KILLED", file=sys.stderr)
            return 130
        except (ValueError, LookupError) as exc:  # dataset/learner mismatch, unknown runner
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(_summary_table(exp, result))
        uri = resolve_uri(exp.tracking.uri)
        print(f"MLflow run {result.run_id} in experiment '{exp.tracking.experiment}'")
        for line in ui_lines(uri, result.experiment_id):
            print(line)
        if result.status != "FINISHED":
            print(f"run {result.status}: {result.reason}", file=sys.stderr)
            status = 1
    return status


def _checkpoints_readable(experiments: Sequence[Experiment]) -> bool:
    """``--resume``: every checkpoint there is reads back whole, checked before any run is
    opened (a corrupt one: one line naming it and the choice, exit 2)."""
    from grokspec.training.checkpoint import CheckpointError, checkpoint_path, read_checkpoint

    ok = True
    for exp in experiments:
        path = checkpoint_path(exp)
        if path.exists():
            try:
                read_checkpoint(path)
            except CheckpointError as exc:
                print(f"error: {exc}", file=sys.stderr)
                ok = False
    return ok


def _tracking_ready(experiments: Sequence[Experiment], resume: bool) -> bool:
    """Before training: each store reachable (else one line, exit 2, nothing trained), spools
    of earlier runs replayed, and with --resume the runs whose process died closed FAILED
    (grokspec.tracking.health / liveness)."""
    from grokspec.tracking.health import preflight
    from grokspec.tracking.liveness import close_dead_in
    from grokspec.tracking.tracker import resolve_uri

    echo = lambda line: print(line, file=sys.stderr)  # noqa: E731
    by_uri: dict[str, list[str]] = {}
    for exp in experiments:
        by_uri.setdefault(resolve_uri(exp.tracking.uri), []).append(exp.tracking.experiment)
    if not preflight(by_uri, echo):
        return False
    if resume:
        for uri, names in by_uri.items():
            close_dead_in(uri, names, echo)
    return True


def _summary_table(exp: Experiment, result) -> str:  # noqa: ANN001 - RunResult, lazy import
    s = result.summary
    final = s.get("final", {}) if s else {}

    def fmt(v: object) -> str:
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    from grokspec.metrics.summary import phase_fit

    thr, tr, te = phase_fit(s or {})
    rule = s.get("phase_rule", "?") if s else "?"
    at = f"acc>={thr:g}, the {rule} phase rule's" if thr is not None else "phase rule"
    delay = te - tr if tr is not None and te is not None else None
    rows = [
        ("run", f"{exp.name} ({exp.dataset.kind} x {exp.learner.kind}, seed {exp.seed})"),
        ("status", result.status),
        ("steps run", fmt(s.get("final_step") if s else None)),
        ("final train acc", fmt(final.get("train/acc"))),
        ("final test acc", fmt(final.get("test/acc"))),
        (f"train fit step ({at})", fmt(tr)),
        (f"test fit step ({at})", fmt(te)),
        (f"grokking delay ({at})", fmt(delay)),
        (f"phase (grok.phase, {rule} rule)", fmt(s.get("phase") if s else None)),
    ]
    fit_thr = s.get("threshold") if s else None
    if fit_thr is not None and fit_thr != thr:  # the grok/* events, at train.fit_threshold
        label = f"acc>={fit_thr:g}, train.fit_threshold"
        rows += [
            (f"train fit step ({label})", fmt(s.get("train_fit_step"))),
            (f"test fit step ({label})", fmt(s.get("test_fit_step"))),
            (f"delay ratio ({label})", fmt(s.get("delay_ratio"))),
        ]
    else:
        rows.append(("delay ratio (test/train fit)", fmt(s.get("delay_ratio") if s else None)))
    rows += [
        ("test-acc stages", fmt(len(s["stages"]) if s and "stages" in s else None)),
        ("early warning step", fmt(s.get("warning_step") if s else None)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grokspec", description="Declarative grokking experiments tracked in MLflow."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check spec files; print errors with file:line")
    _add_spec_args(p)
    p.add_argument("--resolved", action="store_true", help="print every resolved field")
    sweep_cli.add_only_arg(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="train the spec(s) and log to MLflow")
    _add_spec_args(p)
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep_cli.add_execution_args(p)
    sweep_cli.add_only_arg(p)
    p.set_defaults(func=cmd_run)
    sweep_cli.add_parsers(sub, _add_spec_args)  # sweep, phase-diagram
    report_cli.add_parser(sub)  # report: the seed papers' reproductions (grokspec/papers/)

    compare_cli.add_parser(sub)
    gc_cli.add_parser(sub)  # gc: close runs whose process died
    ui_cli.add_parser(sub)  # ui: the MLflow UI on a free port
    sync_cli.add_parser(sub)  # sync: replay runs spooled while the server was down

    p = sub.add_parser("schema", help="print the spec JSON Schema (for editors)")
    p.add_argument("--markdown", action="store_true", help="the spec reference as markdown")
    p.set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Called with ``argv`` (tests, other Python code) it returns the exit
    status; called as the ``grokspec`` program (``argv`` None) it exits the process itself,
    without the interpreter's teardown (see :func:`exit_now`)."""
    import os

    # MLflow's telemetry thread races the first request on an offline machine (issue 19)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (argparse exits 2)
        if argv is None:
            exit_now(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2)
        raise
    try:
        status = int(args.func(args))
    except Exception as exc:
        if not no_space(exc):
            raise
        print(f"error: no space left on the device ({no_space(exc)}): the run that was "
              "writing is closed FAILED where the store could still be written; free space, "
              "then `grokspec gc` closes any run left RUNNING", file=sys.stderr)
        status = 1
    if argv is None:
        exit_now(status)
    return status


def no_space(exc: BaseException) -> str | None:
    """What ran out of space, if ``exc`` (or what it wraps) is a full disk: an OSError
    ENOSPC (its file), or SQLite's "database or disk is full"."""
    import errno

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return str(seen.filename or "a file")
        if "database or disk is full" in str(seen) or "No space left on device" in str(seen):
            return "the tracking database or its folder"
        seen = seen.__cause__ or seen.__context__
    return None


def exit_now(status: int) -> None:
    """Exit once everything is written: flush stdout/stderr and logging, then ``os._exit``.

    By the time a command returns, every MLflow run it opened is ended (metrics flushed,
    status set) and every file closed; what remains of a normal exit is the interpreter
    tearing down torch, MLflow and SQLAlchemy module by module, ~2 s of CPU after each run
    on this project's machines, for nothing.
    """
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to write
            pass
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
