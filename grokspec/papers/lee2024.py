"""Lee et al. 2024 (Grokfast): amplifying the slow gradient component reaches 95% validation
accuracy in far fewer steps than the paper's Adam baseline (weight decay 0)."""

from __future__ import annotations

from typing import Any

from grokspec.metrics import names
from grokspec.papers import synthetic as syn
from grokspec.papers.claim import (
    Claim,
    RuleInputError,
    RunRecord,
    Thresholds,
    Verdict,
    censored,
    steps_to,
)

THRESHOLDS: dict[str, Any] = {
    "threshold": 0.95,  # the README's "iterations to reach 95% val. acc."
    "partial": 0.5,
    "min_speedup": 5.0,  # the README reports 43.8x (EMA) and 50.5x (MA)
    "min_partial_speedup": 2.0,
    "baseline": "baseline",
    "main": "grokfast_ema",
}


def _gf(r: RunRecord) -> str:
    g = r.experiment.train.grokfast
    wd = r.experiment.train.optimizer.weight_decay
    if g is None:
        return f"off, wd {wd:g}"
    f = f"ema a={g.alpha} l={g.lamb}" if g.filter == "ema" else f"ma w={g.window} l={g.lamb}"
    return f"{f}, wd {wd:g}"


def _speedup(base: RunRecord, r: RunRecord, thr: float) -> tuple[float | None, bool]:
    """baseline steps / run steps to ``thr``; a censored baseline makes it a lower bound."""
    s = r.first_step(names.TEST_ACC, thr)
    if s is None:
        return None, False
    b = base.first_step(names.TEST_ACC, thr)
    return censored(b, base) / max(s, 1), b is None


def check(records: list[RunRecord], th: Thresholds, figure: bool = False) -> Verdict:
    by = {r.variant: r for r in records}
    base, main = by.get(th["baseline"]), by.get(th["main"])
    if base is None or main is None:
        return Verdict("no data", f"needs the variants {th['baseline']} and {th['main']} "
                       f"(have {sorted(str(v) for v in by)})")
    hi, lo = th["threshold"], th["partial"]
    rows = []
    for r in records:
        row: dict[str, Any] = {"variant": r.variant, "grokfast": _gf(r)}
        for t in (lo, hi):
            sp, bound = _speedup(base, r, t) if r is not base else (None, False)
            row[f"steps to {t:g}"] = steps_to(r, t)
            row[f"speed-up at {t:g}"] = (None if sp is None else
                                         f"{'>= ' if bound else ''}{sp:.2f}x")
        row["final test acc"] = r.final(names.TEST_ACC)
        rows.append(row)
    sp_hi, b_hi = _speedup(base, main, hi)
    sp_lo, b_lo = _speedup(base, main, lo)
    if sp_hi is not None and sp_hi >= th["min_speedup"]:
        label = "reproduced"
    elif sp_lo is not None and sp_lo >= th["min_partial_speedup"]:
        label = "partly"
    else:
        label = "not reproduced"
    why = (f"{th['main']} vs {th['baseline']}: steps to {hi:g} test accuracy {steps_to(main, hi)}"
           f" vs {steps_to(base, hi)} (speed-up {_x(sp_hi, b_hi)}, need >= "
           f"{th['min_speedup']:g}x); steps to {lo:g} {steps_to(main, lo)} vs "
           f"{steps_to(base, lo)} (speed-up {_x(sp_lo, b_lo)}, partly needs >= "
           f"{th['min_partial_speedup']:g}x). '> N': never within the run (censored; a "
           "speed-up over a censored baseline is a lower bound). The other variants are "
           "reported, not used for the verdict.")
    fig = None
    if figure:
        from grokspec.papers.figures import curves

        fig = curves(records, (names.TRAIN_ACC, names.TEST_ACC), "Lee et al. (Grokfast)",
                     label=lambda r: r.variant or "")
    return Verdict(label, why, rows, fig)


def _x(v: float | None, bound: bool) -> str:
    return "never reached" if v is None else f"{'>= ' if bound else ''}{v:.2f}x"


def precheck(points: list[tuple[dict[str, Any], Any]], th: Thresholds) -> None:
    variants = {v.get("variant") for v, _ in points}
    for key in ("baseline", "main"):
        if th[key] not in variants:
            raise RuleInputError("sweep.variants", f"the rule compares variant '{th[key]}', "
                                 f"which the spec lacks (has {sorted(map(str, variants))})")


def controls() -> tuple[list[RunRecord], list[RunRecord]]:
    """Negative: every variant learns like the baseline (0.5 at step 3000, 0.95 at 6000).
    Positive: the EMA run gets to 0.95 at step 900, the baseline never within 10000."""
    def same(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        return syn.accuracy(300, 6000, test_plateau=0.05) | {
            names.TEST_ACC: syn.ramp(6000, start=0, lo=0.0)}

    def fast(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        if var in ("grokfast_ema", "grokfast_ma"):
            return syn.accuracy(300, 900)
        return syn.accuracy(300, None, test_plateau=0.06)

    return syn.build("lee2024", same, 10000, 50), syn.build("lee2024", fast, 10000, 50)


CLAIM = Claim(
    paper="lee2024",
    citation="Lee, Kang, Kim, Lee 2024. Grokfast: accelerated grokking by amplifying slow "
    "gradients.",
    claim="Grokfast (the EMA filter, with the README's Adam + L2 0.005) reaches 95% test "
    "accuracy in far fewer steps than the README's baseline (Adam, weight decay 0); the "
    "paper reports 43.8x (EMA) and 50.5x (MA) on x*y mod 97.",
    rule="Steps to {threshold} and to {partial} test accuracy, baseline `{baseline}` over "
    "`{main}` (a run that never gets there counts as its last step + 1: the speed-up is then "
    "a lower bound). Reproduced: speed-up at {threshold} >= {min_speedup}x. Partly: speed-up "
    "at {partial} >= {min_partial_speedup}x. Else not reproduced. Grokfast-MA and the two "
    "ablations (filter alone, weight decay alone) are reported alongside.",
    thresholds=THRESHOLDS,
    check=check,
    full_size="`grokspec report specs/papers/paper-scale/lee2024.yaml` (x*y mod 97, the "
    "README's 2-layer transformer, batch 512, up to 1e5 steps).",
    controls=controls,
    precheck=precheck,
    amendments=(),
    notes=(
        "The first report (2026-11-26) compared AdamW weight decay 1 with and without the "
        "filter at a 0.99 threshold (1.01x: not reproduced). That answered another question "
        "(does Grokfast help on top of strong weight decay?); issue 11 replaced the spec by "
        "the README's baseline and filters, and the threshold by the README's 0.95, before "
        "these runs were read. Verdict history: not reproduced then, and not reproduced now "
        "by the registered rule, but with the paper's direction visible: the baseline "
        "memorizes (test 0.06 after 10000 steps) while Grokfast-EMA + L2 0.005 ends at test "
        "0.42 (issue 11 measured 0.42-0.46 after 6000 steps), short of the 0.5 the partial "
        "verdict needs; neither ablation does it alone (filter alone 0.06, L2 alone 0.05). "
        "Grokfast-MA (L2 0.01) reaches 0.5 at step 4500, a speed-up of >= 2.2x over the "
        "censored baseline, but the verdict is registered on EMA, the paper's main method, "
        "and MA is not picked because it did better. A longer budget would be needed to read "
        "steps-to-0.95 at this size. 2026-12-03 (issue 17): those runs were the x^2-MLP "
        "miniature (now specs/grokfast_mlp_mod31.yaml). The spec is now the README setting "
        "with the authors' model, budget 8000 steps on a CPU, seeds 0-2; the ablations' "
        "remaining seeds were stopped for time. The rule reads one record per variant (the "
        "last seed collected); every EMA seed gives a >= 5.6x lower bound, so the verdict "
        "does not depend on which. Issue 18: seeds combine by the registered seed rule; the "
        "baseline is censored at 20000 steps (the README's needs 39890 to reach 0.95): "
        "test accuracy 0.52, 0.38 and 0.38 at step 20000 at seeds 0-2, never 0.95. EMA "
        "reaches 0.95 "
        "at 1110 and 1410 steps (>= 18.0x and >= 14.2x over the censored baseline; 1270 at "
        "seed 2), MA at 980 and 1020; the authors' own code gave EMA 910/1340/910 and MA "
        "790/900/1050 at seeds 0-2 (../shared/research/grokfast-reference.md). Empirical "
        "control: the filter without weight decay (ema_only) stays at test accuracy 0.17, "
        "0.02 and 0.19 after 8000 steps at seeds 0-2. Noticed, rule unchanged (it is the "
        "README's contrast, registered before the runs): the weight-decay-only ablation "
        "(l2_only, L2 0.005, no filter) reaches 0.95 at 6900, 1400 and 1400 steps at seeds "
        "0-2, about as fast as Grokfast-EMA at seeds 1-2: at this setting most of the gap to "
        "the weight-decay-0 baseline is the weight decay. A claim about the filter itself "
        "(EMA + L2 vs L2 alone) would need its own registered rule. About 4 CPU hours of "
        "runs in all."
    ),
)
