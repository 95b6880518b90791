"""Nanda et al. 2023: on modular addition a transformer's progress measures move before the
test-accuracy jump: the restricted loss falls and the excluded loss rises during circuit
formation, and a handful of key frequencies carry the network."""

from __future__ import annotations

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
    fit_at,
    verdict_from,
)

THRESHOLDS: dict[str, Any] = {
    "phase_rule": "liu2022",
    "fit_at": "phase_rule",  # fit steps at the phase rule's threshold (claim.fit_at)
    "half": 0.5,  # "before the jump": test accuracy halfway from the leakage level to 1
    # the read point is relative to the commutativity leakage (test pairs whose swapped pair
    # was trained on): leak + half * (1 - leak); "absolute": test accuracy >= half (issue 18)
    "half_from": "leakage",
    "min_excluded_rise": 1.5,  # excluded loss peak / its value at the train fit
    "max_restricted_ratio": 0.5,  # restricted loss at test 0.5 / at the train fit
    "max_key_freqs": 8,  # "a handful" (Nanda et al.: 5 at p=113)
}


def leakage(r: RunRecord) -> float:
    """The test accuracy a model gets from commutativity alone: the fraction of test pairs
    (x, y) whose swapped pair (y, x) is a training pair with the same answer (x+y: all of
    them). A transformer that memorises its training pairs symmetrically sits at this level
    long before the jump."""
    data = r.experiment.dataset.build(r.experiment.seed)
    p = int(data.info["p"])
    tx, ty = data.meta_train["operand_x"].long(), data.meta_train["operand_y"].long()
    answer = {int(x) * p + int(y): int(c) for x, y, c in zip(tx, ty, data.y_train, strict=True)}
    ex, ey = data.meta_test["operand_x"].long(), data.meta_test["operand_y"].long()
    hits = sum(answer.get(int(y) * p + int(x)) == int(c)
               for x, y, c in zip(ex, ey, data.y_test, strict=True))
    return hits / max(len(data.y_test), 1)


def check(records: list[RunRecord], th: Thresholds, figure: bool = False) -> Verdict:
    r = records[0]
    thr = fit_at(th, r)
    leak = leakage(r) if th.get("half_from", "absolute") == "leakage" else 0.0
    read = leak + th["half"] * (1.0 - leak)
    tr, half = r.first_step(names.TRAIN_ACC, thr), r.first_step(names.TEST_ACC, read)
    ex, rs = names.EXCLUDED_LOSS, names.RESTRICTED_LOSS
    e0, r0, r_half = r.at(ex, tr), r.at(rs, tr), r.at(rs, half)
    e_max = max((v for s, v in zip(*r.series(ex), strict=True)
                 if tr is not None and half is not None and tr <= s <= half), default=None)
    n_key = r.final(names.FOURIER_KEY_FREQ_COUNT)
    at = f"test acc {read:.3g}"
    # column names without the read point's value: it depends on each seed's split, and
    # seeds share one table
    rows = [{"leakage": leak, "read point (test acc)": read, "train fit": tr,
             "read point step": half, "excluded loss @train fit": e0,
             "max before read point": e_max, "restricted loss @train fit": r0,
             "@read point": r_half, "key frequencies": n_key}]
    label, why = verdict_from([
        (f"groks ({th['phase_rule']} rule: {r.phase(th['phase_rule'])})",
         r.phase(th["phase_rule"]) == "grokking"),
        (f"the excluded loss rises >= {th['min_excluded_rise']:g}x between the train fit and "
         f"{at} (leakage {leak:.3g})", None not in (e0, e_max) and e0 > 0
         and e_max >= th["min_excluded_rise"] * e0),
        (f"the restricted loss falls to <= {th['max_restricted_ratio']:g}x its train-fit value "
         f"by {at}", None not in (r0, r_half) and r0 > 0
         and r_half <= th["max_restricted_ratio"] * r0),
        (f"a handful of key frequencies at the end: 1 to {th['max_key_freqs']} "
         f"({names.FOURIER_KEY_FREQ_COUNT} = {n_key})",
         n_key is not None and 1 <= n_key <= th["max_key_freqs"]),
    ])
    fig = None
    if figure:
        from grokspec.papers.figures import curves

        fig = curves([r], (names.TEST_ACC, rs, ex), "Nanda et al.: progress measures",
                     ylabel="value")
    return Verdict(label, why, rows, fig)


def controls() -> tuple[list[RunRecord], list[RunRecord]]:
    """Negative: comprehension (test 300 steps after train), flat progress measures, 40 key
    frequencies. Positive: test jumps at 4000, the restricted loss falls and the excluded loss
    rises from step 1000, 5 key frequencies."""
    def none(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        return syn.accuracy(200, 500) | {names.EXCLUDED_LOSS: syn.const(1.0),
                                         names.RESTRICTED_LOSS: syn.const(1.0),
                                         names.FOURIER_KEY_FREQ_COUNT: syn.const(40)}

    def some(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        return syn.accuracy(200, 4000) | {
            names.TEST_ACC: syn.ramp(4000, start=3000, lo=0.02),
            names.EXCLUDED_LOSS: lambda s: 0.5 if s < 1000 else 3.0,
            names.RESTRICTED_LOSS: lambda s: 3.0 if s < 1000 else 0.2,
            names.FOURIER_KEY_FREQ_COUNT: syn.const(5)}

    return syn.build("nanda2023", none, 6000, 50), syn.build("nanda2023", some, 6000, 50)


CLAIM = Claim(
    paper="nanda2023",
    citation="Nanda, Chan, Lieberum, Smith, Steinhardt 2023. Progress measures for grokking "
    "via mechanistic interpretability.",
    claim="On modular addition a 1-layer transformer's restricted loss falls and its excluded "
    "loss rises before the test-accuracy jump (circuit formation); a handful of key "
    "frequencies carry the network.",
    rule="Key frequencies are Nanda et al.'s (each neuron's dominant frequency, "
    "analysis.key_frequencies: nanda2023). Reproduced when (1) the run is labelled `grokking` "
    "by the {phase_rule} rule, (2) the excluded loss peaks >= {min_excluded_rise}x its "
    "train-fit value before test accuracy first reaches the read point (half_from = "
    "{half_from}: leakage: leak + {half} x (1 - leak), leak = the fraction of test pairs "
    "whose swapped pair is trained on with the same answer; absolute: {half}), (3) the "
    "restricted loss is <= "
    "{max_restricted_ratio}x its train-fit value by then, (4) 1 to {max_key_freqs} key "
    "frequencies at the end. Some: partly.",
    thresholds=THRESHOLDS,
    check=check,
    full_size="`grokspec report specs/papers/paper-scale/nanda2023.yaml` (p=113, 30% of the "
    "table, 40000 steps).",
    controls=controls,
    amendments=(
        Amendment("2026-12-03", {"fit_at": "train.fit_threshold"}, FIT_AT_REASON),
        Amendment("2026-12-03", {"half_from": "absolute"},
                  "issue 18, after the runs were read: test accuracy 0.5 can be the "
                  "commutativity-leakage level rather than the start of the jump (at p=47 the "
                  "test accuracy sat at 0.44-0.50 from the train fit on); the read point is "
                  "now halfway from the leakage level to 1"),
    ),
    notes=(
        "The first report (2026-11-26) read grokspec's top-k embedding Fourier sparsity "
        "instead of the restricted loss and the neurons' key frequencies; issue 11 replaced "
        "them by Nanda et al.'s definitions before these runs were read. Verdict history: "
        "partly then (the sparsity-timing part failed), reproduced now: the excluded loss "
        "rises from 4.9 at the train fit (step 150) to 9.7 before test accuracy 0.5 (step "
        "2350), while the restricted loss falls from 0.33 to 0.003; 7 key frequencies at the "
        "end (Nanda et al. found 5 at p=113; that run had p=47). 2026-12-03 (issue 17): that "
        "run's model was grokspec's transformer with torch's init, not Nanda et al.'s. With "
        "their model (init included) at the same p=47 setting the run fit train at step 50 "
        "and test accuracy 0.5 at step 350: comprehension, verdict partly (the excluded loss "
        "did not rise). The spec now runs the paper's own setting (p=113, 30%, lr 1e-3): "
        "train fit at step 200, test accuracy 0.5 at 8400, the excluded loss rises 1.17 -> "
        "10.6 while the restricted loss falls 1.67 -> 0.04, 8 key frequencies at the end "
        "(Nanda et al. report 5); one seed. Issue 18: the restricted and excluded losses now "
        "use the final model's key frequencies over every kept evaluation, as Nanda et al.'s "
        "code does (analysis.key_frequencies_at: final), and the read point is halfway from "
        "the commutativity-leakage level (0.299 here) to 1, i.e. test accuracy 0.649 (step "
        "8300). Rerun (one seed, 28 min wall on a loaded machine): train fit at step 200; "
        "the excluded loss rises from 0.085 at the train fit to 10.9 before the read point, "
        "the restricted loss falls from 4.42 to 0.071; 7 key frequencies at the end: "
        "reproduced, also under the old read point. 2026-12-03 (fourth session): seeds 1 and 2 "
        "added (the spec is now a sweep over seeds 0-2; seed 0's run is the one above): "
        "reproduced at every seed; seed 1 reads at test acc 0.648 (step 5100, leakage 0.297): "
        "excluded loss 0.12 -> 7.56, restricted 4.26 -> 0.0008, 7 key frequencies; seed 2 at "
        "step 6200: excluded 0.135 -> 19.1, restricted 4.41 -> 0.024, 5 key frequencies."
    ),
)
