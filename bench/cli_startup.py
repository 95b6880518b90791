"""How long the CLI takes to answer: CPU time of ``grokspec --help`` and ``grokspec validate``
against the floor any pydantic + YAML tool pays (``python -c "import pydantic, yaml"``).

CPU time (user + system of the child process, from ``resource.getrusage``) rather than wall
time: the project's machines are shared, and CPU time is what the command itself costs. Each
command runs ``--repeats`` times; the table shows the minimum (the least disturbed run) and
what the command imported of torch / mlflow / matplotlib (it should import none).

Usage: python bench/cli_startup.py [--repeats 5]
Target (issue 13): validate <= 1.5 x floor + 0.3 s.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "mlflow", "matplotlib")
PROBE = ("import sys; from grokspec.cli.main import main; rc = main({argv!r}); "
         "print('HEAVY', [m for m in {heavy!r} if m in sys.modules], file=sys.stderr)")


def cpu_seconds(cmd: list[str]) -> tuple[float, str]:
    """(user + system CPU seconds of one child process, its stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used, proc.stderr


def heavy_imports(argv: list[str]) -> str:
    """Which heavy packages the command left in sys.modules (same process, after it ran)."""
    code = PROBE.format(argv=argv, heavy=HEAVY)
    _, err = cpu_seconds([sys.executable, "-c", code])
    line = next((ln for ln in err.splitlines() if ln.startswith("HEAVY")), "HEAVY ?")
    found = line.removeprefix("HEAVY ").strip("[]").replace("'", "")
    return found or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    grokspec = [sys.executable, "-m", "grokspec.cli.main"]
    cases = {
        'python -c "import pydantic, yaml"': ([sys.executable, "-c", "import pydantic, yaml"],
                                              None),
        "grokspec --help": ([*grokspec, "--help"], None),
        "grokspec validate specs/quickstart.yaml": (
            [*grokspec, "validate", "specs/quickstart.yaml"],
            ["validate", "specs/quickstart.yaml"],
        ),
        "grokspec validate specs/cross_model_parity.yaml (a sweep)": (
            [*grokspec, "validate", "specs/cross_model_parity.yaml"],
            ["validate", "specs/cross_model_parity.yaml"],
        ),
    }
    rows = []
    for name, (cmd, probe_argv) in cases.items():
        best = min(cpu_seconds(cmd)[0] for _ in range(args.repeats))
        rows.append((name, best, heavy_imports(probe_argv) if probe_argv else "-"))
    floor = rows[0][1]
    target = 1.5 * floor + 0.3
    print(f"| command | CPU s (min of {args.repeats}) | x floor | heavy imports |")
    print("|---|---|---|---|")
    for name, sec, heavy in rows:
        print(f"| `{name}` | {sec:.2f} | {sec / floor:.2f}x | {heavy} |")
    validate = rows[2][1]
    verdict = "met" if validate <= target else "NOT met"
    print(f"\ntarget: validate <= 1.5 x {floor:.2f} + 0.3 = {target:.2f} s CPU: {verdict} "
          f"({validate:.2f} s)")


if __name__ == "__main__":
    main()
