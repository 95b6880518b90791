"""Every claim's rule can fail and can pass: negative and positive controls, trends, amendments.

Each claim builds synthetic run records from its own spec's points: the paper's effect absent
(must be "not reproduced") and present (must be "reproduced"). These include the cases the
first rules got wrong (issue 11): a phase diagram without a grokking run, a rank "falling"
from 139.0 to 138.9, 3-point trends, a removed subclass that cannot be reached by
construction.
"""

from __future__ import annotations

import pytest

from grokspec.papers.claim import trend
from grokspec.papers.registry import PAPERS, claim


@pytest.mark.parametrize("paper", PAPERS)
def test_negative_control_is_not_reproduced_and_positive_is(paper: str) -> None:
    c = claim(paper)
    neg, pos = c.controls()
    assert neg and pos
    v_neg, v_pos = c.decide(neg), c.decide(pos)
    assert v_neg.label == "not reproduced", v_neg.why
    assert v_pos.label == "reproduced", v_pos.why


@pytest.mark.parametrize("paper", PAPERS)
def test_rule_text_names_its_thresholds_and_amendments_decide(paper: str) -> None:
    c = claim(paper)
    text = c.rule_text()
    assert "{" not in text, "every placeholder is filled from the thresholds"
    _, pos = c.controls()
    for a, before, after in c.amended():
        assert set(a.old) <= set(before) and after != before
        c.decide(pos, before)  # the old rule still runs on the same records


def test_unknown_claim_name_lists_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="valid: lee2024"):
        claim("nobody2000")


def test_trend_needs_points_and_an_effect_size() -> None:
    # 3 points, perfectly ordered: not enough points.
    assert not trend([1, 2, 3], [10, 20, 40], "up", 4, 0.8, 2.0).holds
    # Monotone but tiny: 139.0 -> 138.9 is no fall.
    assert not trend([1, 2, 3, 4], [139.0, 138.98, 138.95, 138.9], "down", 4, 0.8, 2.0).holds
    # Large but out of order.
    assert not trend([1, 2, 3, 4], [10, 400, 5, 300], "up", 4, 0.8, 2.0).holds
    t = trend([1, 2, 3, 4], [100, 200, 400, 800], "up", 4, 0.8, 2.0)
    assert t.holds and t.rho == pytest.approx(1.0) and t.fold == pytest.approx(600 / 150)
    assert trend([1, 2, 3, 4], [800, 400, 200, 100], "down", 4, 0.8, 2.0).holds


def test_spearman_is_not_rounded_onto_a_boundary() -> None:
    from grokspec.papers.claim import spearman

    rho = spearman([1, 2, 3], [2, 3, 1])
    assert rho is not None and rho == pytest.approx(-0.5) and round(rho, 12) == -0.5


def test_miller_amendment_of_8b65551_is_shown_with_both_verdicts() -> None:
    """The 100-step minimum delay -> 4 evaluations change relabels a 50-step GP delay."""
    from grokspec.papers.synthetic import accuracy, build

    c = claim("miller2023")

    def gp_fast(var, v, exp):  # noqa: ANN001, ANN202 - fit 5, test fit 55 (gp_n40 in 2026-11)
        return accuracy(5, 55)

    recs = build("miller2023", gp_fast, 400, 5)
    (a1, b1, f1), *_ = c.amended()
    assert b1["phase_rule"] == "grokspec-min-delay-100" and f1["phase_rule"] == "grokspec"
    gp = [r for r in recs if r.experiment.learner.kind == "gp"][0]
    assert gp.phase("grokspec-min-delay-100") == "comprehension"
    assert gp.phase("grokspec") == "grokking"
    assert gp.phase("liu2022") == "comprehension"
