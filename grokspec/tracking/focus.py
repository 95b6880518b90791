"""Which metrics reach MLflow as their own keys: a focused set the chart view can show.

MLflow's chart view draws one chart per metric key, in alphabetical sections. A GP with 40
input dimensions logs 40 ``gp/lengthscale/<i>`` keys and a transformer ~20
``weights/l2_norm/<module>`` keys, which pushes ``test/*`` and ``train/*`` to the tenth
section. With ``analysis.diagnostics: summary`` (the default) each such *many-valued family*
reaches MLflow as three keys, ``<family>/min``, ``/median`` and ``/max``; the individual
values stay in the run's ``history.csv`` artifact (the full table, every evaluation) and in
the in-process history every measure and summary reads. ``full`` logs every value as its
own key. Everything else (``train/*``, ``test/*``, ``grok/*``, ``weights/l2_norm``, the
enabled progress measures) is always logged as is.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

#: Metric families with one value per dimension / module: ``<prefix><name>``.
MANY_VALUED = ("weights/l2_norm/", "gp/lengthscale/")
STATS = ("min", "median", "max")


def focus(metrics: Mapping[str, float], mode: str = "summary") -> dict[str, float]:
    """``metrics`` with each many-valued family replaced by its min/median/max (``summary``),
    or unchanged (``full``). Keys already named ``<family>min|median|max`` pass through."""
    if mode == "full":
        return dict(metrics)
    out: dict[str, float] = {}
    groups: dict[str, list[float]] = {}
    for key, value in metrics.items():
        family = next((f for f in MANY_VALUED if key.startswith(f)), None)
        if family is None or key[len(family):] in STATS:
            out[key] = value
        else:
            groups.setdefault(family, []).append(float(value))
    for family, values in groups.items():
        out[f"{family}min"] = min(values)
        out[f"{family}median"] = statistics.median(values)
        out[f"{family}max"] = max(values)
    return out
