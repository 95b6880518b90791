"""The CLI answers fast: ``grokspec --help`` and ``grokspec validate`` import neither torch
nor MLflow nor matplotlib (bench/cli_startup.py measures the CPU time this saves)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "mlflow", "matplotlib")
PROBE = """
import sys
from grokspec.cli.main import main
try:
    rc = main({argv!r})
except SystemExit as exc:  # --help
    rc = exc.code
print(rc)
print(sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["validate", "specs/quickstart.yaml"],
    ["validate", "specs/cross_model_parity.yaml", "specs/miller_gp_parity.yaml"],
])
def test_cli_starts_without_heavy_imports(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    rc, heavy = proc.stdout.strip().splitlines()[-2:]
    assert rc == "0", proc.stderr
    assert heavy == "[]", f"{argv} imported {heavy}"


def test_the_program_exits_with_the_commands_status() -> None:
    """``grokspec`` (argv from the command line) exits via os._exit after flushing: the
    output is complete and the status is the command's."""
    ok = subprocess.run([sys.executable, "-m", "grokspec.cli.main", "validate",
                         "specs/quickstart.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("specs/quickstart.yaml: ok")
    bad = subprocess.run([sys.executable, "-m", "grokspec.cli.main", "validate",
                          "specs/nope.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.yaml" in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "grokspec.cli.main", "frobnicate"],
                           cwd=ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
