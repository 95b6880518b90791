"""Power et al. 2022: modular division groks; steps-to-grok falls with the training fraction;
weight decay shortens the delay."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from grokspec.metrics import names
from grokspec.papers import synthetic as syn
from grokspec.papers.claim import (
    FIT_AT_REASON,
    Amendment,
    Claim,
    RunRecord,
    Thresholds,
    Verdict,
    censored,
    fit_at,
    require_points,
    trend,
    verdict_from,
)

FRACTION, WD = "dataset.train_fraction", "train.optimizer.weight_decay"

THRESHOLDS: dict[str, Any] = {
    "phase_rule": "liu2022",
    "fit_at": "phase_rule",  # fit steps at the phase rule's threshold (claim.fit_at)
    "min_points": 4,  # points per trend (with 3, rho >= 0.5 holds for half of all orderings)
    "min_rho": 0.8,
    "min_fold": 2.0,  # the end-to-end change a trend must show
}


def _by(records: list[RunRecord], key: str) -> dict[Any, list[RunRecord]]:
    out: dict[Any, list[RunRecord]] = defaultdict(list)
    for r in records:
        out[r.value(key)].append(r)
    return dict(sorted(out.items()))


def check(records: list[RunRecord], th: Thresholds, figure: bool = False) -> Verdict:
    thr = fit_at(th, records[0])
    test_fit = {id(r): r.first_step(names.TEST_ACC, thr) for r in records}
    train_fit = {id(r): r.first_step(names.TRAIN_ACC, thr) for r in records}
    rows = [{"train_fraction": r.value("train_fraction"), "weight_decay": r.value("weight_decay"),
             "train fit": train_fit[id(r)], "test fit": test_fit[id(r)],
             f"phase ({th['phase_rule']})": r.phase(th["phase_rule"])} for r in records]
    grokked = [r for r in records if r.phase(th["phase_rule"]) == "grokking"]

    def trends(axis: str, over: str, delay: bool) -> dict[Any, Any]:
        out = {}
        for k, rs in _by(records, axis).items():
            if all(test_fit[id(r)] is None for r in rs):
                continue  # nothing fit: every value is "longer than the run", no trend to read
            if delay:  # a run whose train accuracy never fits has no delay: left out
                rs = [r for r in rs if train_fit[id(r)] is not None]
            ys = [censored(test_fit[id(r)], r) - (train_fit[id(r)] or 0 if delay else 0)
                  for r in rs]
            out[k] = trend([r.value(over) for r in rs], ys, "down", th["min_points"],
                           th["min_rho"], th["min_fold"])
        return out

    by_wd = trends("weight_decay", "train_fraction", delay=False)
    by_frac = trends("train_fraction", "weight_decay", delay=True)

    def summary(ts: dict[Any, Any]) -> str:
        return "; ".join(f"{k:g}: {t.text}" for k, t in ts.items()) or "no value with a fit"

    n_wd, n_fr = sum(t.holds for t in by_wd.values()), sum(t.holds for t in by_frac.values())
    label, why = verdict_from([
        (f"x/y groks ({th['phase_rule']} phase rule) in {len(grokked)} of {len(records)} runs "
         "(need >= 1)", bool(grokked)),
        (f"steps-to-grok (test fit at {thr}, never = censored) falls with the train fraction at "
         f"{n_wd} of {len(by_wd)} weight decays with a fit (need a majority) [{summary(by_wd)}]",
         bool(by_wd) and n_wd * 2 > len(by_wd)),
        (f"the delay falls with weight decay at {n_fr} of {len(by_frac)} train fractions with a "
         f"fit (need a majority) [{summary(by_frac)}]", bool(by_frac) and n_fr * 2 > len(by_frac)),
    ])
    fig = None
    if figure:
        from grokspec.papers.figures import xy

        fig = xy({f"wd={k:g}": ([r.value("train_fraction") for r in rs],
                                [censored(test_fit[id(r)], r) for r in rs])
                  for k, rs in _by(records, "weight_decay").items()},
                 "train fraction", "test fit step (censored at run end)",
                 "Power et al.: steps to grok", logy=True)
    return Verdict(label, why, rows, fig)


def precheck(points: list[tuple[dict[str, Any], Any]], th: Thresholds) -> None:
    for axis in (FRACTION, WD):
        require_points(f"sweep.grid.{axis}", len({v.get(axis) for v, _ in points}),
                       th["min_points"])


def controls() -> tuple[list[RunRecord], list[RunRecord]]:
    """Negative: test fits at the same step whatever the fraction and weight decay (no trend),
    150 steps after train (no grokking under Liu's 1000-step rule). Positive: the delay halves
    with each step up the fraction grid and each step up the weight-decay grid."""
    pts = syn.points("power2022")
    fr = sorted({v[FRACTION] for _, _, v, _ in pts})
    wd = sorted({v[WD] for _, _, v, _ in pts})

    def flat(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        return syn.accuracy(100, 250)

    def effect(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        up = (len(fr) - 1 - fr.index(v[FRACTION])) + (len(wd) - 1 - wd.index(v[WD]))
        return syn.accuracy(100, 100 + 1500 * 2**up)

    last = 100 + 1500 * 2 ** (len(fr) + len(wd)) + 200
    return syn.build("power2022", flat, 8000, 25), syn.build("power2022", effect, last, 200)


CLAIM = Claim(
    paper="power2022",
    citation="Power, Burda, Edwards, Babuschkin, Misra 2022. Grokking: generalization beyond "
    "overfitting on small algorithmic datasets.",
    claim="Modular division groks; steps-to-grok falls as the training fraction rises; weight "
    "decay shortens the delay.",
    rule="Reproduced when (1) at least one run is labelled `grokking` by the {phase_rule} phase "
    "rule, (2) at a majority of weight decays (those where some run fit) the test-fit step "
    "(never = censored at the run's end) falls with the train fraction, and (3) at a majority "
    "of train fractions (those where some run fit) the delay falls with weight decay. A trend "
    "holds with >= {min_points} points, Spearman <= -{min_rho} and a fold change of >= "
    "{min_fold}x between the mean of the two lowest-x and the two highest-x points. Some of "
    "the three: partly.",
    thresholds=THRESHOLDS,
    check=check,
    full_size="`grokspec report specs/papers/paper-scale/power2022.yaml` (x/y mod 97, the "
    "paper's 2-layer transformer, batch 512, 1e5 steps).",
    controls=controls,
    precheck=precheck,
    amendments=(
        Amendment("2026-11-26", {"phase_rule": "grokspec-min-delay-100"}, "commit 8b65551, "
                  "after the first report was written: grokspec's phase rule replaced its "
                  "100-step minimum delay by a minimum of 4 evaluations"),
        Amendment("2026-11-30", {"phase_rule": "grokspec", "min_points": 2, "min_rho": 0.5,
                                 "min_fold": 1.0},
                  "issue 11: the phase names are Liu et al.'s, and so is the rule now; the "
                  "first report's trend rule was a Spearman <= -0.5 alone (3 points per trend, "
                  "no effect size), met at exactly -0.5 only thanks to a rounding added after "
                  "the runs were read"),
        Amendment("2026-12-03", {"fit_at": "train.fit_threshold"}, FIT_AT_REASON),
    ),
    notes=(
        "The first report's grid had 3 weight decays; weight decay 0.1 was added (issue 11) "
        "so that each trend has 4 points. Verdict history: reproduced in the first report "
        "(2026-11-26), partly now; the fraction trend holds at every weight decay with a fit, "
        "the weight-decay trend does not hold at a majority of fractions: at 0.5 weight decay "
        "3 never fits (non-monotone), and at 0.6 the rank correlation is exactly -0.8 in "
        "ranks but computes to -0.7999999999999998 and misses the registered <= -0.8. With "
        "exact arithmetic that fraction would pass and the verdict would be reproduced; the "
        "rule is not changed after reading these runs (that is how the first report's -0.5 "
        "rounding came about), so the verdict stays partly and this note says why."
    ),
)
