"""The learner contract: every learner provides what its spec declares, measures read only
through it, a third-party model that implements it is measured, one that does not is refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grokspec.learners.contract import (
    PARAMETERS,
    PROBES,
    TOKEN_EMBEDDINGS,
    ContractError,
    Probe,
    capabilities,
    penalty_term,
)
from grokspec.metrics import names
from grokspec.metrics.capture import EvalCapture
from grokspec.metrics.fourier_measure import FourierMeasure
from grokspec.metrics.measures import build_measures, capturing
from grokspec.metrics.progress.feature_rank import FeatureRank
from grokspec.metrics.progress.param_movement import ParamMovement
from grokspec.metrics.progress.weight_norm import measure as weight_norm_measure
from grokspec.spec.loading import SpecError
from tests.helpers import experiment
from tests.learner_cases import GP_TRAIN, LEARNERS, P  # noqa: F401
from tests.metrics_helpers import measured, with_learner


def built(key: str):  # noqa: ANN201
    train = GP_TRAIN if key == "gp" else {}
    exp = with_learner(LEARNERS[key], dataset={"kind": "modular", "p": P}, train=train)
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(0)
    return exp, data, exp.learner.build(data)


@pytest.mark.parametrize("key", list(LEARNERS))
def test_each_model_provides_what_its_spec_declares(key: str) -> None:
    exp, data, model = built(key)
    declared = type(exp.learner).provides
    assert capabilities(model) == declared, key
    if PROBES in declared:
        probes = model.probes()
        assert probes and all(isinstance(p, Probe) for p in probes.values())
        seen: dict[str, list[torch.Tensor]] = {}
        hooks = [probe.post.register_forward_hook(
            lambda _m, _i, out, n=n: seen.setdefault(n, []).append(out)) for n, probe in
            probes.items()]
        model(data.x_train[:8])
        for h in hooks:
            h.remove()
        assert seen, "probe points never fired"
        # every probe name is a module path of the model (metric names stay stable)
        modules = dict(model.named_modules())
        assert all(modules[n] is probes[n].pre for n in probes)
    if TOKEN_EMBEDDINGS in declared:
        embs = model.token_embeddings()
        assert embs and all(e.ndim == 2 and e.shape[0] >= P for e in embs)
    if "penalty" in declared:
        model(data.x_train[:8])
        assert penalty_term(model).ndim == 0
    else:
        assert penalty_term(model) is None


def test_one_hot_embeddings_are_the_first_layer_blocks() -> None:
    _, data, model = built("mlp")
    a, b = model.token_embeddings()
    x = data.x_train[:5]
    pre = model.net[0](x)  # embedding_bag of the two rows
    torch.testing.assert_close(pre, a[x[:, 0]] + b[x[:, 1]] + model.net[0].bias)


class ToyNet(nn.Module):
    """A third party's model of x + y mod p, implementing the contract by hand."""

    provides = frozenset({PROBES, TOKEN_EMBEDDINGS, PARAMETERS})

    def __init__(self, p: int, width: int = 24) -> None:
        super().__init__()
        self.emb = nn.Embedding(p, 8)
        self.hidden = nn.Linear(16, width)
        self.relu = nn.ReLU()
        self.head = nn.Linear(width, p)

    def probes(self) -> dict[str, Probe]:
        return {"hidden": Probe(self.hidden, self.relu)}

    def token_embeddings(self) -> list[torch.Tensor]:
        return [self.emb.weight]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.hidden(self.emb(x).flatten(1))))


class OpaqueNet(ToyNet):
    """The same network, but it declares nothing: its attribute names mean nothing to us."""

    provides = frozenset()


def test_a_third_party_model_is_measured_through_the_contract() -> None:
    exp = experiment(dataset={"p": P})
    data = exp.dataset.build(exp.seed)
    toy = ToyNet(P)
    dev = torch.device("cpu")
    rank = FeatureRank(exp.analysis, data, dev)(0, toy)
    assert 1 <= rank["progress/feature_rank/hidden"] <= 24
    fourier = measured(FourierMeasure(exp, data, dev), toy)
    assert 0 < fourier[names.FOURIER_SPARSITY] <= 1 and names.RESTRICTED_LOSS in fourier
    assert "weights/l2_norm/hidden" in weight_norm_measure(0, toy)
    assert ParamMovement(exp, data)(0, toy) == {names.PARAM_MOVEMENT: 0.0}


@pytest.mark.parametrize(
    ("measure", "needs"),
    [("feature_rank", "probes"), ("fourier", "token_embeddings")],
)
def test_a_model_outside_the_contract_is_refused_by_name(measure: str, needs: str) -> None:
    exp = experiment(dataset={"p": P})
    data = exp.dataset.build(exp.seed)
    dev = torch.device("cpu")
    m = FeatureRank(exp.analysis, data, dev) if measure == "feature_rank" else (
        FourierMeasure(exp, data, dev))
    with pytest.raises(ContractError, match=rf"'{measure}' cannot read OpaqueNet: .*{needs}"):
        m(0, OpaqueNet(P))


def test_weight_measures_refuse_a_non_module() -> None:
    with pytest.raises(ContractError, match="parameters"):
        weight_norm_measure(0, object())


@pytest.mark.parametrize(
    ("learner", "measure", "says"),
    [
        ({"kind": "linear"}, "feature_rank", "probes()"),
        ({"kind": "bayesian_mlp"}, "feature_rank", "probes()"),
        ({"kind": "mlp"}, "pathways", "routing(tokens)"),
        ({"kind": "gp"}, "weight_norm", "parameters()"),
        ({"kind": "gp"}, "ntk", "parameters()"),
    ],
)
def test_validation_rejects_a_measure_the_learner_cannot_serve(
    learner: dict, measure: str, says: str
) -> None:
    train = GP_TRAIN if learner["kind"] == "gp" else {}
    with pytest.raises(SpecError) as err:
        with_learner(learner, dataset={"kind": "modular", "p": P}, train=train,
                     analysis={"metrics": [measure]})
    text = str(err.value)
    assert "analysis.metrics" in text and f"'{measure}'" in text and says in text
    assert f"the {learner['kind']} learner does not" in text


def test_measures_reuse_the_evaluation_forward_pass() -> None:
    """Inside capturing(), the evaluation's pass serves fourier and feature_rank: the model
    is not run again, and the numbers equal those of the measures' own passes."""
    exp = experiment(dataset={"p": P}, analysis={"metrics": ["fourier", "feature_rank"]})
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(0)
    model = exp.learner.build(data)
    dev = torch.device("cpu")
    measures, _ = build_measures(exp, data, dev)
    from grokspec.training.evaluation import standard_metrics

    calls = {"n": 0}
    hook = model.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    tensors = {k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    with capturing(model, measures):  # the runners' evaluation, as the loop calls it
        standard_metrics(model, data, exp.train, tensors)
    before = calls["n"]
    got: dict[str, float] = {}
    for m in measures:
        got.update(measured(m, model))
    assert calls["n"] == before  # no pass of their own
    hook.remove()
    assert names.RESTRICTED_LOSS in got and "progress/feature_rank/net.0" in got
    want: dict[str, float] = {}
    for name in ("fourier", "feature_rank"):  # each alone, on its own forward pass
        solo = experiment(dataset={"p": P}, analysis={"metrics": [name]})
        for m in build_measures(solo, data, dev)[0]:
            want.update(measured(m, model))
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-7), k


def test_a_stale_capture_is_never_read() -> None:
    exp = experiment(dataset={"p": P})
    data = exp.dataset.build(exp.seed)
    model = exp.learner.build(data)
    capture = EvalCapture()
    capture.want_outputs()
    with capture.recording(model), torch.no_grad():
        model.eval()
        model(data.x_train)
    assert capture.take(model, data.x_train, step=5) is capture.last  # claimed by step 5
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    fresh = capture.take(model, data.x_train, step=6)  # a later step: runs the model again
    torch.testing.assert_close(fresh.output(len(data.x_train)), model(data.x_train))


def test_expensive_measures_run_on_their_own_step_interval() -> None:
    """analysis.intervals: the NTK at most every 300 steps whatever eval_every is; a measure
    without an interval at every evaluation; the first evaluation always computes both."""
    exp = experiment(dataset={"p": P}, analysis={"metrics": ["weight_norm", "ntk"],
                                                 "intervals": {"ntk": 300}})
    assert exp.analysis.interval("ntk") == 300 and exp.analysis.interval("fourier") == 500
    data = exp.dataset.build(exp.seed)
    model = exp.learner.build(data)
    measures, _ = build_measures(exp, data, torch.device("cpu"))
    ran = {}
    for step in range(0, 1001, 100):
        out: dict[str, float] = {}
        for m in measures:
            out.update(m(step, model))
        ran[step] = (names.NTK_CHANGE in out, "weights/l2_norm/net.0" in out)
    assert [s for s, (ntk, _) in ran.items() if ntk] == [0, 300, 600, 900]
    assert all(norm for _, norm in ran.values())


def test_unknown_measure_in_intervals_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="analysis.intervals"):
        experiment(analysis={"intervals": {"ntkk": 10}})
