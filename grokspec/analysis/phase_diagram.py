"""Phase diagrams from a sweep (Liu et al. 2022, "Towards Understanding Grokking", Fig. 1).

Reads a sweep's FINISHED child runs back from MLflow, places each on a grid by two swept
params (e.g. weight decay x data fraction) and colours every cell by the phase label that
the runs of that cell got (majority over seeds and any other axis: comprehension, grokking,
memorization, confusion), or shades it by the median of a summary metric (``grok/delay``,
``grok/test_fit_step``, ...). Cells are evenly spaced: sweeps use log ranges, and the tick
labels carry the values.

The phase of a run is its ``grok.phase`` tag, written by :func:`grokspec.run.run_experiment`
with the rule of :mod:`grokspec.metrics.phases`; runs logged before that tag existed get the
same rule applied to their ``grok/*`` metrics here.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grokspec.analysis.plots import to_png
from grokspec.metrics import names
from grokspec.metrics.phases import PHASES, phase_label
from grokspec.tracking import tags
from grokspec.tracking.store import RunStore
from grokspec.tracking.tracker import Tracker

COLOURS = {
    "comprehension": "#2ca02c",
    "grokking": "#1f77b4",
    "memorization": "#ff7f0e",
    "confusion": "#d62728",
}


@dataclass
class PhaseDiagram:
    path: Path
    parent_run_id: str | None
    table: str
    cells: dict[tuple[float, float], list[Any]] = field(default_factory=dict)

    def phases(self) -> set[str]:
        """Every phase label that appeared in any run."""
        return {v for values in self.cells.values() for v in values if isinstance(v, str)}


def _num(text: str | None) -> Any:
    """A param back as the value it was (MLflow stores params as strings; ``1e-05`` is not a
    YAML 1.1 float, so numbers are tried first)."""
    if text is None:
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def _phase(run: Any) -> str:
    tag = run.data.tags.get(tags.PHASE)
    if tag:
        return tag
    m = run.data.metrics
    train_fit, test_fit = m.get(names.GROK_TRAIN_FIT_STEP), m.get(names.GROK_TEST_FIT_STEP)
    return phase_label(
        None if train_fit is None else int(train_fit), None if test_fit is None else int(test_fit)
    )


def _runs(
    store: RunStore, exp_id: str, x: str, y: str, parent: str | None
) -> tuple[str | None, list]:
    """The parent run and its latest FINISHED child per spec hash that has both params."""

    def children(pid: str) -> list:
        return store.children(pid, exp_id, status="FINISHED")

    if parent is None:
        for run in store.sweep_parents(exp_id):
            kids = children(run.info.run_id)
            if any(x in r.data.params and y in r.data.params for r in kids):
                parent = run.info.run_id
                break
        else:
            raise LookupError(
                f"no sweep in this experiment has FINISHED runs with params '{x}' and '{y}'"
            )
    kids = [r for r in children(parent) if x in r.data.params and y in r.data.params]
    if not kids:
        raise LookupError(
            f"parent run {parent} has no FINISHED children with params '{x}' and '{y}'"
        )
    latest = {r.data.tags.get(tags.SPEC_HASH, r.info.run_id): r for r in kids}
    return parent, list(latest.values())


def phase_diagram(
    experiment: str,
    x: str,
    y: str,
    metric: str = "phase",
    parent_run_id: str | None = None,
    uri: str | None = None,
    out: str | Path | None = None,
) -> PhaseDiagram:
    """Draw, write and log the diagram. Raises LookupError if there is nothing to draw."""
    store = RunStore(uri)
    exp_id = store.require_experiment(experiment)
    parent, runs = _runs(store, exp_id, x, y, parent_run_id)
    cells: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
    for run in runs:
        key = (_num(run.data.params[x]), _num(run.data.params[y]))
        cells[key].append(_phase(run) if metric == "phase" else run.data.metrics.get(metric))
    xs = sorted({k[0] for k in cells})
    ys = sorted({k[1] for k in cells})
    fig, summary = _figure(cells, xs, ys, x, y, metric, experiment)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{experiment}_{metric}")
    path = Path(out) if out else Path("grokspec_out") / f"phase_diagram_{safe}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    png = to_png(fig)
    path.write_bytes(png)
    table = _table(summary, xs, ys, x, y)
    if parent:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", metric)
        Tracker.attach(store.uri, parent).log_files({
            f"phase_diagram_{stem}.png": png,
            f"phase_diagram_{stem}.csv": _csv(cells, x, y, metric).encode(),
        })
    return PhaseDiagram(path, parent, table, dict(cells))


def _cell_summary(values: list[Any], metric: str) -> tuple[Any, str]:
    """(what colours the cell, its annotation)."""
    if metric == "phase":
        counts = Counter(values)
        top, n = counts.most_common(1)[0]
        return top, f"{top}\n{n}/{len(values)}"
    nums = [v for v in values if v is not None]
    if not nums:
        return None, "never"
    med = statistics.median(nums)
    return med, f"{med:.4g}" + (f"\n{len(nums)}/{len(values)}" if len(nums) < len(values) else "")


def _figure(cells: dict, xs: list, ys: list, x: str, y: str, metric: str, title: str) -> tuple:
    import numpy as np
    from matplotlib.colors import ListedColormap, LogNorm, Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.patheffects import withStroke

    summary = {k: _cell_summary(v, metric) for k, v in cells.items()}
    grid = np.full((len(ys), len(xs)), np.nan)
    fig = Figure(figsize=(1.1 * len(xs) + 3.5, 0.8 * len(ys) + 2.2))
    ax = fig.subplots()
    if metric == "phase":
        index = {p: i for i, p in enumerate(PHASES)}
        for (xv, yv), (top, _) in summary.items():
            grid[ys.index(yv), xs.index(xv)] = index.get(top, np.nan)
        cmap = ListedColormap([COLOURS[p] for p in PHASES])
        ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(PHASES) - 0.5, origin="lower", aspect="auto")
        present = {s[0] for s in summary.values()}
        handles = [Patch(color=COLOURS[p], label=p) for p in PHASES if p in present]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    else:
        for (xv, yv), (val, _) in summary.items():
            if val is not None:
                grid[ys.index(yv), xs.index(xv)] = val
        finite = grid[np.isfinite(grid)]
        log = finite.size and finite.min() > 0 and finite.max() / finite.min() > 20
        norm = LogNorm() if log else Normalize()
        ax.set_facecolor("#dddddd")  # cells where no run reached the event
        im = ax.imshow(grid, cmap="viridis", norm=norm, origin="lower", aspect="auto")
        fig.colorbar(im, ax=ax, label=f"median {metric}")
    for (xv, yv), (_, text) in summary.items():
        ax.text(xs.index(xv), ys.index(yv), text, ha="center", va="center", fontsize=7,
                path_effects=[withStroke(linewidth=2, foreground="white")])
    ax.set_xticks(range(len(xs)), [_tick(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_tick(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    n_runs = sum(len(v) for v in cells.values())
    ax.set_title(f"{title}: {metric} ({n_runs} runs)")
    fig.tight_layout()
    return fig, summary


def _tick(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _table(summary: dict, xs: list, ys: list, x: str, y: str) -> str:
    head = f"| {y} \\ {x} | " + " | ".join(_tick(v) for v in xs)
    lines = [head + " |", "|---|" + "---|" * len(xs)]
    for yv in reversed(ys):
        row = [summary[(xv, yv)][1].replace("\n", " ") if (xv, yv) in summary else "" for xv in xs]
        lines.append(f"| {_tick(yv)} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _csv(cells: dict, x: str, y: str, metric: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([x, y, metric, "runs"])
    for (xv, yv), values in sorted(cells.items(), key=lambda kv: (str(kv[0][1]), str(kv[0][0]))):
        writer.writerow([xv, yv, _cell_summary(values, metric)[0], len(values)])
    return buf.getvalue()
