"""Miller et al. 2023: the delay grows with the number of spurious (concealing) dimensions; a
GP with a tiny initial lengthscale groks; a Bayesian neural net groks on concealed parity."""

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
    censored,
    fit_at,
    require_points,
    trend,
    verdict_from,
)

THRESHOLDS: dict[str, Any] = {
    "phase_rule": "liu2022",
    "fit_at": "phase_rule",  # fit steps at the phase rule's threshold (claim.fit_at)
    "min_points": 4, "min_rho": 0.8, "min_fold": 2.0,
    "gp_phase_part": False,  # part (2) dropped: see the 2026-12-03 amendment
}


def _gps(records: list[RunRecord]) -> list[RunRecord]:
    return sorted([r for r in records if r.experiment.learner.kind == "gp"],
                  key=lambda r: r.experiment.dataset.n_bits)


def check(records: list[RunRecord], th: Thresholds, figure: bool = False) -> Verdict:
    gps, bnn = _gps(records), [r for r in records if r.experiment.learner.kind == "bayesian_mlp"]
    thr = fit_at(th, records[0])
    rows, delays, spurious = [], [], []
    for r in records:
        tr, te = r.first_step(names.TRAIN_ACC, thr), r.first_step(names.TEST_ACC, thr)
        rows.append({"variant": r.variant, "learner": r.experiment.learner.kind,
                     "n_bits": r.experiment.dataset.n_bits, "train fit": tr, "test fit": te,
                     "phase": r.phase(th["phase_rule"]), "final test acc": r.final(names.TEST_ACC)})
        if r in gps and tr is not None:  # a run that never fits train has no delay
            spurious.append(r.experiment.dataset.n_bits - r.experiment.dataset.k)
            delays.append(censored(te, r) - tr)
    t = trend(spurious, delays, "up", th["min_points"], th["min_rho"], th["min_fold"])
    gp_phases = [r.phase(th["phase_rule"]) for r in gps]
    bnn_phases = [r.phase(th["phase_rule"]) for r in bnn]
    parts = [
        (f"the GP's delay (test fit - train fit at {thr}, never = censored) grows with the "
         f"spurious bits {spurious}: {t.text}", t.holds),
        (f"a GP run is labelled grokking by the {th['phase_rule']} rule: {gp_phases}",
         "grokking" in gp_phases),
        (f"the Bayesian MLP groks on concealed parity: {bnn_phases}", "grokking" in bnn_phases),
    ]
    if not th.get("gp_phase_part", True):  # amended: the GP phase is reported, not judged
        parts.pop(1)
    label, why = verdict_from(parts)
    if not th.get("gp_phase_part", True):
        why += f" (not judged since the 2026-12-03 amendment: the GP phases {gp_phases})"
    fig = None
    if figure:
        from grokspec.papers.figures import curves

        fig = curves(records, (names.TRAIN_ACC, names.TEST_ACC), "Miller et al.: concealed "
                     "parity", label=lambda r: r.variant or r.label)
    return Verdict(label, why, rows, fig)


def precheck(points: list[tuple[dict[str, Any], Any]], th: Thresholds) -> None:
    bits = {e.dataset.n_bits for _, e in points if e.learner.kind == "gp"}
    require_points("sweep.variants (gp variants' dataset.n_bits)", len(bits), th["min_points"])


def controls() -> tuple[list[RunRecord], list[RunRecord]]:
    """Negative: every run generalises 100 steps after fitting, whatever the bits.
    Positive: the GP's delay doubles per variant from 1200 steps; the BNN groks at 2500."""
    def none(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        return syn.accuracy(50, 150)

    def some(var: Any, v: dict[str, Any], exp: Any) -> dict[str, syn.Curve]:
        if exp.learner.kind == "gp":
            return syn.accuracy(50, 50 + 1200 * 2 ** (exp.dataset.n_bits // 20))
        return syn.accuracy(50, 2500)

    return syn.build("miller2023", none, 3000, 10), syn.build("miller2023", some, 40000, 100)


CLAIM = Claim(
    paper="miller2023",
    citation="Miller, O'Neill, Bui 2023. Grokking beyond neural networks: an empirical "
    "exploration with model complexity.",
    claim="The grokking delay grows with the number of spurious dimensions concealing the "
    "task; a GP with a tiny initial lengthscale groks; a Bayesian neural net groks on "
    "concealed parity.",
    rule="Reproduced when (1) the GP's delay (never = censored; a run whose train accuracy "
    "never fits has no delay and is left out) rises with the number of spurious bits "
    "(>= {min_points} GP variants, Spearman >= {min_rho}, fold >= {min_fold}x between the two "
    "fewest- and the two most-bits variants), (2) a GP run (part dropped by the 2026-12-03 "
    "amendment, gp_phase_part = {gp_phase_part}) and (3) the Bayesian MLP run are labelled "
    "`grokking` by the {phase_rule} phase rule. Some: partly.",
    thresholds=THRESHOLDS,
    check=check,
    full_size="`grokspec report specs/papers/paper-scale/miller2023.yaml` (more bits, more "
    "seeds).",
    controls=controls,
    notes=(
        "Verdict history: partly in the first report (gp_n40, fit 5 / test fit 55, was "
        "comprehension under the 100-step rule); commit 8b65551 would have made it reproduced "
        "with no new evidence (see the amendments). Partly now, with the paper's GP learning "
        "rate (1e-2) and 4 GP points: the delay grows with the concealing bits (40, 280 "
        "steps, then never within 3000 at 60 and 80 bits), but no run is grokking by Liu et "
        "al.'s rule: every delay is under its 1000 steps (the Bayesian MLP's is 900). Liu's "
        "absolute 1000-step window was made for 1e5-step transformer runs; the rule is not "
        "changed here after reading the runs."
    ),
    precheck=precheck,
    amendments=(
        Amendment("2026-11-26", {"phase_rule": "grokspec-min-delay-100"}, "commit 8b65551 "
                  "(after the first report) replaced the 100-step minimum delay by 4 "
                  "evaluations: that alone relabelled gp_n40 (fit 5, test fit 55) as grokking "
                  "and moved Miller from partly to reproduced with no new evidence"),
        Amendment("2026-11-30", {"phase_rule": "grokspec", "min_points": 3, "min_fold": 1.0},
                  "issue 11: Liu et al.'s phase rule; a trend needs 4 points and an effect "
                  "size (the first rule read a 3-point Spearman >= 0.8)"),
        Amendment("2026-12-03", {"fit_at": "train.fit_threshold"}, FIT_AT_REASON),
        Amendment("2026-12-03", {"gp_phase_part": True}, "issue 18: part (2) cannot pass "
                  "at this setting: Liu et al.'s window is 1000 absolute steps, made for 1e5-"
                  "step runs, and a 3000-step GP run that fits train at step 20 would need to "
                  "generalise after step 1020 and within the budget. The GP's delay is still "
                  "judged by part (1). Registered before seeds 1 and 2 ran (seed 0 had been "
                  "read)"),
    ),
)
