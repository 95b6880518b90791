"""Figures: a run's curves and overlays of many runs (accuracy and loss vs step, log-x).

Log-x because grokking spans decades of steps: fit at ~10^2, generalization at ~10^3-10^4.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # for the pyplot users elsewhere (paper figures): never a window
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from grokspec.metrics import names  # noqa: E402


def _series(history: Sequence[Mapping[str, float]], key: str) -> tuple[list[float], list[float]]:
    """Points of one metric; step 0 and non-finite values cannot sit on a log axis."""
    pts = [
        (h["step"], h[key])
        for h in history
        if key in h and h["step"] > 0 and math.isfinite(h[key])
    ]
    return [p[0] for p in pts], [p[1] for p in pts]


def _log_axes(ax: Axes, logy: bool) -> None:
    """Log scales only where there is positive data (matplotlib refuses otherwise)."""
    xs = [x for line in ax.get_lines() for x in line.get_xdata()]
    ys = [y for line in ax.get_lines() for y in line.get_ydata()]
    if any(x > 0 for x in xs):
        ax.set_xscale("log")
    if logy and any(y > 0 for y in ys):
        ax.set_yscale("log")


def is_accuracy(metric: str) -> bool:
    """``train/acc``, ``test/acc``, ``test/acc_subclass/0.1``: values in [0, 1]."""
    return metric.rsplit("/", 1)[-1].startswith("acc") or "/acc" in metric


def curves_figure(history: Sequence[Mapping[str, float]], title: str = "") -> Figure:
    """Accuracy and loss vs step for one run, train and test."""
    fig = Figure(figsize=(11, 4))
    ax_acc, ax_loss = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("test", "-")):
        colour = "tab:blue" if split == "train" else "tab:red"
        ax_acc.plot(*_series(history, f"{split}/acc"), style, color=colour, label=split)
        ax_loss.plot(*_series(history, f"{split}/loss"), style, color=colour, label=split)
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_loss.set_ylabel("loss")
    for ax, logy in ((ax_acc, False), (ax_loss, True)):
        _log_axes(ax, logy)
        ax.set_xlabel("step (optimizer updates)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    _margins(fig, 2)
    return fig


def overlay_figure(
    runs: Mapping[str, Sequence[Mapping[str, float]]],
    metrics: Sequence[str] = (names.TEST_ACC, names.TRAIN_ACC),
    title: str = "",
    styles: Mapping[str, tuple[int, int]] | None = None,
) -> Figure:
    """One panel per metric, one line per run (label -> history), log-x. ``styles``: per
    label (colour index, line-style index), e.g. colour by variant and style by the other
    sweep axes; default one colour per run."""
    fig = Figure(figsize=(5.5 * len(metrics), 4))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    dashes = ["-", "--", ":", "-."]
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (label, history) in enumerate(runs.items()):
            c, d = (styles or {}).get(label, (i, 0))
            ax.plot(*_series(history, metric), color=colours[c % len(colours)],
                    linestyle=dashes[d % len(dashes)], label=label)
        _log_axes(ax, logy=metric.endswith("loss"))
        if is_accuracy(metric):  # fixed: auto-scaling makes a 0.9975 dip look like a crash
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step (optimizer updates)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small" if len(runs) <= 8 else "x-small",
                      ncol=1 if len(runs) <= 12 else 2)
    fig.suptitle(title)
    _margins(fig, len(metrics))
    return fig


def _margins(fig: Figure, panels: int) -> None:
    """Fixed margins in inches (tick labels, axis labels, a one-line title) for a row of
    ``panels`` axes: ``tight_layout`` measured every text first and was half of a 1-step
    run's figure time (0.3 of 0.7 CPU s for curves.png and comparison.png, issue 23)."""
    w, h = fig.get_size_inches()
    left, right, gap = 1.0, 0.25, 1.1  # inches: y tick + axis labels, edge, between panels
    axis = (w - left - right - gap * (panels - 1)) / panels
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=0.6 / h, top=1 - 0.5 / h,
                        wspace=gap / axis)


def to_png(fig: Figure) -> bytes:
    """PNG bytes of a figure made with :class:`~matplotlib.figure.Figure` (no pyplot: its
    import and figure registry are not needed to write a file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
