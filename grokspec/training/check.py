"""``check_learner`` and ``check_runner``: what a plugin author runs against their class.

In the spirit of scikit-learn's ``check_estimator``: one call exercises everything grokspec
will ask of a learner (or runner) and fails with a message naming the broken promise and the
fix, instead of a failure deep inside a training run or a measure. grokspec's own learners
and runners pass them (tests/test_plugin_checks.py).

    from grokspec.training.check import check_learner, check_runner
    from grokspec.spec.loading import validate_data

    exp = validate_data({"name": "t", "dataset": {"kind": "modular", "p": 11},
                         "learner": {"kind": "my_learner", ...}})
    check_learner(exp)          # the spec, the built model, the contract, determinism
    check_runner(MyRunner, exp) # the interface, features, loss, uniform metrics
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, get_args

from grokspec.learners.contract import (
    CAPABILITIES,
    PARAMETERS,
    PENALTY,
    PROBES,
    ROUTING,
    TOKEN_EMBEDDINGS,
    capabilities,
)
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch

    from grokspec.spec.experiment import Experiment
else:
    torch = lazy_module("torch")


class CheckFailed(AssertionError):
    """A learner or runner breaks a promise grokspec relies on."""


def _fail(who: str, what: str, fix: str) -> None:
    raise CheckFailed(f"{who}: {what} ({fix})")


def check_learner(experiment: Experiment, rows: int = 8) -> None:
    """Check ``experiment.learner`` on ``experiment.dataset``: the spec is a strict,
    discriminated pydantic model; its declared capabilities exist and the built model provides
    exactly them; two builds from one seed are identical; the forward pass has the task's
    shape and is finite; probes fire and are module paths; token embeddings are (vocab, d);
    a penalty is a scalar; declared parameter groups map to parameters; the loss has a
    gradient for every trained parameter. Raises :class:`CheckFailed`."""
    from grokspec.spec.features import runner_name
    from grokspec.training.batches import Batch
    from grokspec.training.runner import load_runner

    spec = experiment.learner
    who = f"check_learner({type(spec).__name__})"
    kind = type(spec).model_fields.get("kind")
    if kind is None or not get_args(kind.annotation):
        _fail(who, "the spec has no `kind: Literal[...]` field", "the union dispatches on it")
    if type(spec).model_config.get("extra") != "forbid":
        _fail(who, "the spec accepts unknown fields", "derive from LearnerSpecBase "
              "(extra='forbid': a misspelt field must be an error, not ignored)")
    declared = frozenset(type(spec).provides)
    unknown = declared - set(CAPABILITIES)
    if unknown:
        _fail(who, f"`provides` names unknown capabilities {sorted(unknown)}",
              f"valid: {sorted(CAPABILITIES)}")
    data = experiment.dataset.build(experiment.seed)
    torch.manual_seed(experiment.seed)
    model = spec.build(data)
    torch.manual_seed(experiment.seed)
    twin = spec.build(data)
    got = capabilities(model)
    if got != declared:
        _fail(who, f"the built model provides {sorted(got)}, the spec declares "
              f"{sorted(declared)}", "make the model's `provides` match the spec's")
    if PARAMETERS in declared:
        a, b = dict(model.named_parameters()), dict(twin.named_parameters())
        if not a:
            _fail(who, "declares `parameters` but has none", "or do not declare it")
        if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
            _fail(who, "two builds after torch.manual_seed(seed) differ",
                  "draw every random number from torch's global generator")
    x, y = data.x_train[:rows], data.y_train[:rows]
    seen: dict[str, int] = {}
    hooks = []
    if PROBES in declared:
        probes = model.probes()
        modules = dict(model.named_modules())
        for name, probe in probes.items():
            if modules.get(name) is not probe.pre:
                _fail(who, f"probe '{name}' is not the module path of its `pre` module",
                      "name each probe after model.named_modules() (metric names stay stable)")
            hooks.append(probe.post.register_forward_hook(
                lambda _m, _i, _o, n=name: seen.__setitem__(n, seen.get(n, 0) + 1)))
    out = model(x)
    for h in hooks:
        h.remove()
    want = (rows, data.n_classes) if data.task == "classification" else (rows,)
    if tuple(out.shape) != want:
        _fail(who, f"forward gives shape {tuple(out.shape)} for {rows} rows, the task needs "
              f"{want}", "logits per class, or one value per row for regression")
    if not bool(torch.isfinite(out).all()):
        _fail(who, "forward gives non-finite values at initialisation", "check the init")
    if PROBES in declared and not seen:
        _fail(who, "no probe point fired during forward", "probe modules the forward uses")
    if TOKEN_EMBEDDINGS in declared:
        embs = model.token_embeddings()
        vocab = data.vocab_size or 0
        if not embs or any(e.ndim != 2 or e.shape[0] < vocab for e in embs):
            _fail(who, "token_embeddings() must be (vocab, d) matrices, one per position or "
                  "one shared", f"vocab is {vocab}")
    if PENALTY in declared and model.penalty().ndim != 0:
        _fail(who, "penalty() is not a scalar", "return the loss term of the last forward")
    groups = spec.parameter_groups()
    prefixes: dict[str, Any] = getattr(model, "parameter_group_prefixes", {})
    if set(groups) != set(prefixes):
        _fail(who, f"the spec's parameter_groups() {sorted(groups)} and the model's "
              f"parameter_group_prefixes {sorted(prefixes)} differ", "declare the same names")
    names = [n for n, _ in model.named_parameters()]
    for g, pre in prefixes.items():
        if not any(n.startswith(tuple(pre)) for n in names):
            _fail(who, f"parameter group '{g}' holds no parameter", f"prefixes {pre}")
    if PARAMETERS in declared:
        runner = load_runner(runner_name(experiment))
        loss = runner.loss(model, Batch(None, x, y, data, experiment.train))
        if loss.ndim != 0 or not math.isfinite(float(loss.detach())):
            _fail(who, "the runner's loss is not a finite scalar", "check forward")
        loss.backward()
        dead = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        if dead and ROUTING not in declared:  # a routed expert no token chose: no gradient
            _fail(who, f"parameters {dead[:3]} get no gradient from the loss",
                  "freeze them (requires_grad=False) or use them in forward")


def check_runner(runner_cls: Any, experiment: Experiment, rows: int = 8) -> None:
    """Check a runner class against the loop's interface on ``experiment``: ``features``
    are known feature names; ``build`` gives a module; ``loss`` a finite scalar; ``evaluate``
    the uniform metric names (:data:`grokspec.metrics.names.UNIFORM`) as finite floats.
    Raises :class:`CheckFailed`."""
    from grokspec.metrics import names
    from grokspec.spec.features import FEATURES
    from grokspec.training.batches import Batch

    who = f"check_runner({getattr(runner_cls, '__name__', runner_cls)})"
    for method in ("build", "loss", "evaluate"):
        if not callable(getattr(runner_cls, method, None)):
            _fail(who, f"no {method}()", "a runner supplies build, loss and evaluate; the "
                  "one training loop does the rest")
    features = getattr(runner_cls, "features", None)
    if not isinstance(features, (set, frozenset)) or set(features) - set(FEATURES):
        _fail(who, f"features {features!r} is not a set of known features",
              f"valid: {sorted(FEATURES)}")
    runner = runner_cls()
    data = experiment.dataset.build(experiment.seed)
    torch.manual_seed(experiment.seed)
    model = runner.build(experiment, data)
    if not isinstance(model, torch.nn.Module):
        _fail(who, f"build() returned {type(model).__name__}", "return a torch nn.Module")
    loss = runner.loss(model, Batch(None, data.x_train[:rows], data.y_train[:rows], data,
                                    experiment.train))
    if getattr(loss, "ndim", None) != 0 or not math.isfinite(float(loss.detach())):
        _fail(who, "loss() is not a finite scalar tensor", "return the mean loss of the batch")
    tensors = {k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    metrics = runner.evaluate(model, data, experiment.train, tensors)
    missing = [m for m in names.UNIFORM if m not in metrics]
    if missing:
        _fail(who, f"evaluate() lacks {missing}", "every learner logs the same names "
              "(grokspec.metrics.names.UNIFORM), so MLflow overlays any two")
    bad = [k for k in names.UNIFORM if not math.isfinite(float(metrics[k]))]
    if bad:
        _fail(who, f"evaluate() gives non-finite {bad}", "check the model at initialisation")
