"""Small matplotlib figures for the report (imported only when a report is rendered)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from grokspec.metrics import names
from grokspec.papers.claim import RunRecord


def curves(
    records: Sequence[RunRecord],
    metrics: Sequence[str] = (names.TRAIN_ACC, names.TEST_ACC),
    title: str = "",
    label: Callable[[RunRecord], str] = lambda r: r.label,
    logx: bool = True,
    ylabel: str = "accuracy",
) -> Any:
    """Curves of several runs, one small panel per metric."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for rec in records:
            xs, ys = rec.series(metric)
            if xs:
                ax.plot([max(x, 1) for x in xs], ys, label=label(rec), lw=1.2)
        if logx:
            ax.set_xscale("log")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def xy(
    series: dict[str, tuple[list[float], list[float]]], xlabel: str, ylabel: str, title: str,
    logx: bool = False, logy: bool = False,
) -> Any:
    """One panel of named (x, y) lines with markers (trends over a sweep axis)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.3))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, "o-", label=name, lw=1.1)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def grid(
    cells: dict[tuple[float, float], str], xs: Sequence[float], ys: Sequence[float],
    xlabel: str, ylabel: str, title: str, colours: dict[str, int],
) -> Any:
    """A labelled grid of categorical cells (a phase diagram)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    img = [[colours.get(cells.get((x, y), ""), -1) for x in xs] for y in ys]
    ax.imshow(img, cmap="viridis", vmin=-1, vmax=max(colours.values()), origin="lower")
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            ax.text(j, i, cells.get((x, y), "-")[:5], ha="center", va="center", fontsize=7,
                    color="w")
    ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs], fontsize=7)
    ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys], fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
