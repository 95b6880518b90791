"""Kumar et al. 2024: grokking as the transition from lazy to rich training. With the output
scale alpha of a centred network trained by gradient descent, a lazier start (larger alpha)
gives a longer delay, read on the loss."""

from __future__ import annotations

from typing import Any

from grokspec.metrics import names
from grokspec.papers import synthetic as syn
from grokspec.papers.claim import (
    Amendment,
    Claim,
    RunRecord,
    Thresholds,
    Verdict,
    censored,
    require_points,
    trend,
    verdict_from,
)

ALPHA = "learner.output_scale"
THRESHOLDS: dict[str, Any] = {
    "loss_drop": 0.1,  # a loss has "fit" once it is below 10% of its initial value
    "min_points": 4, "min_rho": 0.8, "min_fold": 2.0,
    "min_align_rise": 0.05,  # NTK alignment rise between train fit and test fit (rich phase)
    "exclude_unfit": True,  # a run whose train loss never fits has no delay: left out
}


def _fit(r: RunRecord, metric: str, drop: float) -> int | None:
    steps, vals = r.series(metric)
    if not vals or vals[0] <= 0:
        return None
    return next((s for s, v in zip(steps, vals, strict=True) if v <= drop * vals[0]), None)


def check(records: list[RunRecord], th: Thresholds, figure: bool = False) -> Verdict:
    rs = sorted(records, key=lambda r: r.value("output_scale"))
    rows, switch, alphas, delays = [], [], [], []
    for r in rs:
        tr = _fit(r, names.TRAIN_LOSS, th["loss_drop"])
        te = _fit(r, names.TEST_LOSS, th["loss_drop"])
        a0, a1 = r.at(names.NTK_ALIGNMENT, tr), r.at(names.NTK_ALIGNMENT, te)
        rows.append({"alpha": r.value("output_scale"), "train loss fit": tr, "test loss fit": te,
                     "NTK align @train fit": a0, "@test fit": a1,
                     "movement @train fit": r.at(names.PARAM_MOVEMENT, tr)})
        if tr is not None or not th["exclude_unfit"]:  # no train fit: no delay to speak of
            alphas.append(r.value("output_scale"))
            delays.append(censored(te, r) - (tr or 0))
        if tr is not None and te is not None and te > tr and None not in (a0, a1):
            switch.append(a1 - a0 > th["min_align_rise"])
    t = trend(alphas, delays, "up", th["min_points"], th["min_rho"], th["min_fold"])
    label, why = verdict_from([
        (f"the delay between the train and the test loss falling to {th['loss_drop']:g}x their "
         f"initial values grows with alpha: {t.text}", t.holds),
        (f"in {sum(switch)} of {len(switch)} runs with a delay the NTK alignment rises by > "
         f"{th['min_align_rise']:g} from the train fit to the test fit (need a majority, >= 1)",
         bool(switch) and sum(switch) * 2 > len(switch)),
    ])
    fig = None
    if figure:
        from grokspec.papers.figures import curves

        fig = curves(rs, (names.TRAIN_LOSS, names.TEST_LOSS, names.NTK_ALIGNMENT),
                     "Kumar et al.: lazy to rich",
                     label=lambda r: f"alpha {r.value('output_scale')}",
                     ylabel="value")
    return Verdict(label, why, rows, fig)


def precheck(points: list[tuple[dict[str, Any], Any]], th: Thresholds) -> None:
    require_points(f"sweep.grid.{ALPHA}", len({v.get(ALPHA) for v, _ in points}),
                   th["min_points"])


def controls() -> tuple[list[RunRecord], list[RunRecord]]:
    """Negative: the test loss falls 200 steps after the train loss, alignment flat, and the
    two laziest runs never fit at all (counted as censored delays they would fake a trend).
    Positive: the delay doubles with each alpha; alignment rises at the test fit."""
    alphas = sorted({v[ALPHA] for _, _, v, _ in syn.points("kumar2024")})

    def loss(fit: int) -> syn.Curve:
        return lambda s: 1.0 if s < fit - 100 else 0.01

    def none(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        if alphas.index(v[ALPHA]) >= 2:  # the lazier runs never learn: no delay, no trend
            return {names.TRAIN_LOSS: syn.const(1.0), names.TEST_LOSS: syn.const(1.0),
                    names.NTK_ALIGNMENT: syn.const(0.3)}
        return {names.TRAIN_LOSS: loss(200), names.TEST_LOSS: loss(400),
                names.NTK_ALIGNMENT: syn.const(0.3)}

    def some(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        te = 200 + 1000 * 2 ** alphas.index(v[ALPHA])
        return {names.TRAIN_LOSS: loss(200), names.TEST_LOSS: loss(te),
                names.NTK_ALIGNMENT: syn.ramp(te, lo=0.1, hi=0.6)}

    return syn.build("kumar2024", none, 12000, 100), syn.build("kumar2024", some, 12000, 100)


CLAIM = Claim(
    paper="kumar2024",
    citation="Kumar, Bordelon, Gershman, Pehlevan 2024. Grokking as the transition from lazy "
    "to rich training dynamics.",
    claim="On a polynomial teacher, a centred network f = alpha (net - net_0) trained by "
    "gradient descent groks later the larger alpha (the lazier the start); the NTK aligns with "
    "the task at the transition.",
    rule="A loss has fit at the first evaluation where it is <= {loss_drop}x its initial "
    "value. Reproduced when (1) the delay (test-loss fit - train-loss fit, never = censored) "
    "rises with alpha (>= {min_points} values, Spearman >= {min_rho}, fold >= {min_fold}x; "
    "runs whose train loss never fits carry no delay and are left out: exclude_unfit = "
    "{exclude_unfit}) "
    "and (2) in a majority of the runs with a delay the NTK alignment rises by > "
    "{min_align_rise} between the two fits. Some: partly.",
    thresholds=THRESHOLDS,
    check=check,
    full_size="`grokspec report specs/papers/paper-scale/kumar2024.yaml` (more alphas, "
    "longer budget).",
    controls=controls,
    precheck=precheck,
    notes=(
        "The first report (2026-11-26) scaled every parameter at initialisation (init_scale) "
        "and trained with Adam (parameter movement was already 2.65 at the train fit: not "
        "lazy), read delays on accuracy and decided the trend by a 3-point Spearman >= 0.5 "
        "(partly). Issue 11 replaced the mechanism by the paper's (alpha on a centred "
        "network, plain gradient descent, the loss) before these runs were read. Verdict "
        "history: partly then, not reproduced now: at gradient-descent lr 0.02 only alpha 0.5 "
        "and 1 fit the train loss at all (alpha 2 and 4 never did within 15000 steps), and "
        "the two that fit show no delay to speak of (0 and 100 steps); see the amendment. The "
        "learning rate was chosen from two short probes, not tuned per alpha: a larger budget "
        "or per-alpha rates may change this. 2026-12-03 (issue 17): those runs trained with "
        "weight decay 1.0, not 0 (a kind switch in `extends` fell back to the default), so "
        "their verdict and the 2026-11-30 amendment rest on an artefact; the amendment is "
        "kept as history. The spec is now Kumar et al.'s Fig. 1 setting (their network, "
        "task, learning rate N / alpha^2 and 1e5 steps, weight decay 0). Its runs (one seed): "
        "the train loss falls to 0.1x at steps 4000, 7500, 13500, 24000 and the test loss "
        "at 15500, 35000, 81000, never for alpha 0.5, 1, 2, 4: the delay grows with alpha "
        "(the claim's trend part passes); the NTK alignment part does not. Issue 18: seeds 0-2 "
        "(combined by the registered seed rule), weight decay 0, 1e5 GD steps, ~2.4 CPU hours "
        "in all: every seed gives the same picture. Train-loss fits at 4000-4500, 7500-8000, "
        "13500-15000, 24000-26500 steps and test-loss fits at 14500-16500, 31500-36000, "
        "71000-81000 and never, for alpha 0.5, 1, 2, 4; parameter movement at the train fit "
        "falls with alpha (7.7, 5.3-5.4, 3.7, 2.5: lazier), but the NTK alignment with the "
        "task rises by only 0.003-0.017 between the fits (0.16-0.20 throughout), under the "
        "registered 0.05: partly at every seed."
    ),
    amendments=(
        Amendment("2026-11-30", {"exclude_unfit": False},
                  "after these runs were read: alpha 2 and 4 never fit the train loss, and "
                  "counting their 'delay' as censored at the run's end (15001 - 0 steps) made "
                  "the trend pass on runs that never learned; such runs are now left out of "
                  "the trend (as power2022 already left out fractions where nothing fit)"),
    ),
)
