"""The layout shows the architecture: packages named after concepts, no import cycles, small
modules, the plugin folder installed under grokspec's own name, MLflow behind one gateway.

These are the promises of docs/architecture.md, checked so they stay true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "grokspec"
#: Modules allowed over MAX_LINES, each with the reason it is one unit.
LONG_OK: dict[str, str] = {}
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 10


def modules() -> dict[str, Path]:
    """Dotted name -> file, for grokspec/ and runners/ (installed as grokspec.runners)."""
    out = {}
    for base, prefix in ((PKG, "grokspec"), (ROOT / "runners", "grokspec.runners")):
        for f in base.rglob("*.py"):
            parts = list(f.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = f
    return out


def test_every_package_is_installed_and_runners_is_not_a_bare_package() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in PKG.rglob("__init__.py")}
    assert folders <= listed, f"add to pyproject [tool.setuptools] packages: {folders - listed}"
    assert "runners" not in listed and cfg["package-dir"] == {"grokspec.runners": "runners"}
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert all(v.startswith("grokspec.runners.") for v in eps["grokspec.runners"].values())


def every_import(path: Path) -> set[str]:
    """grokspec modules ``path`` imports anywhere, inside functions too (a lazy import is
    still a dependency), except under ``if TYPE_CHECKING:`` (annotations only)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for stmt in node.body for n in ast.walk(stmt)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("grokspec"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grokspec"):
            found.add(str(node.module))
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_no_import_cycles() -> None:
    """Counting imports inside functions: a module and the one it imports lazily must not
    import each other (the learners' spec -> model direction is one way: a model names its
    spec only for type checking)."""
    mods = modules()
    graph = {
        name: {m for m in every_import(path) if m in mods and m != name}
        for name, path in mods.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycle = stack[stack.index(m):] + [m]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if m not in state:
                dfs(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            dfs(n)


def test_modules_are_small_and_the_top_level_is_a_map() -> None:
    long = {
        str(f.relative_to(ROOT)): n
        for f in [*PKG.rglob("*.py"), *(ROOT / "runners").glob("*.py")]
        if (n := len(f.read_text().splitlines())) > MAX_LINES
    }
    assert set(long) <= set(LONG_OK), f"modules over {MAX_LINES} lines: {long}"
    top = [f.name for f in PKG.glob("*.py") if f.name != "__init__.py"]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_one_training_loop() -> None:
    """Only training/loop.py runs a training loop (backward steps with an evaluation
    cadence): runners, vectorized batches and benches of grokspec go through it."""
    steppers = [
        str(f.relative_to(ROOT))
        for f in [*PKG.rglob("*.py"), *(ROOT / "runners").glob("*.py"),
                  *(ROOT / "bench").glob("*.py")]
        if ".backward()" in (text := f.read_text()) and "eval_every" in text
    ]
    allowed = {"grokspec/training/loop.py"}
    # bench/ holds the hand-written *reference* loops grokspec is measured against.
    assert {s for s in steppers if not s.startswith("bench/")} <= allowed, steppers


def test_spec_reaches_no_higher_layer() -> None:
    """Validation needs the feature table, the sweep block and MLflow's key rules: they live
    in spec/, so spec/ never climbs into training/, sweep/, tracking/, run or runners, not even
    lazily inside a function."""
    higher = ("grokspec.training", "grokspec.sweep", "grokspec.tracking", "grokspec.run",
              "grokspec.runners", "grokspec.cli", "grokspec.papers", "grokspec.analysis")
    mods = modules()
    bad = {name: sorted(m for m in every_import(path) if m.startswith(higher))
           for name, path in mods.items() if name.startswith("grokspec.spec")}
    assert not {k: v for k, v in bad.items() if v}
