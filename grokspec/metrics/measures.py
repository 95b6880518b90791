"""Progress measures wired to a run: built from the spec, called at each evaluation.

:func:`build_measures` turns ``analysis.metrics`` into callables ``(step, model) -> metrics``
for :attr:`grokspec.training.runner.RunContext.measures` and history monitors for
:attr:`grokspec.training.runner.RunContext.monitors`. The numbers come from the pure functions of
:mod:`grokspec.metrics` (fourier, rank, laziness, pathways, warning); this module only finds
what they need inside a model (its embedding, its hidden layers, its initial parameters) and
keeps what must stay fixed across evaluations (the evaluation batch, theta_0, K_0).

Measures run in eval mode under ``torch.no_grad`` (the NTK needs gradients and takes them
functionally), never touch the global RNG, and restore the model's train/eval mode, so a run
with measures trains exactly as one without.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.metrics import names
from grokspec.metrics.fourier import fourier_sparsity, restricted_and_excluded
from grokspec.metrics.laziness import (
    empirical_ntk,
    kernel_alignment,
    kernel_change,
    param_movement,
    projection_matrix,
    targets_matrix,
)
from grokspec.metrics.pathways import pathway_consistency, pathway_distance, pathways_of
from grokspec.metrics.rank import numerical_rank
from grokspec.metrics.spec import resolve_measures
from grokspec.metrics.warning import warning_from_history

Measure = Callable[[int, Any], dict[str, float]]
Monitor = Callable[[list[dict[str, float]]], dict[str, float]]
EVAL_CHUNK = 16384


def _eval_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Outputs on ``x`` in eval mode, chunked, without gradients; the mode is restored."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])
    finally:
        model.train(was)


# ------------------------------------------------------------------------------ weight norm


def group_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm per parameter group: the module that owns the parameter (``net.0``, ``embed``),
    or the parameter itself when it sits on the root module (``pos``)."""
    sq: dict[str, float] = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            group = name.rsplit(".", 1)[0] if "." in name else name
            sq[group] = sq.get(group, 0.0) + float((p.detach().double() ** 2).sum())
    return {names.WEIGHT_NORM_GROUP.format(group=g): v**0.5 for g, v in sq.items()}


def weight_norm_measure() -> Measure:
    return lambda step, model: group_norms(model) if isinstance(model, nn.Module) else {}


# ------------------------------------------------------------------------- param movement


def initial_parameters(experiment: Any, dataset: Dataset) -> list[torch.Tensor] | None:
    """theta_0 rebuilt from the seed, for a run resumed from a checkpoint (whose first
    evaluation is not step 0). The gradient runner seeds torch with the experiment seed and
    builds the model; this repeats that inside a forked RNG, so training is not disturbed."""
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(experiment.seed)
            model = experiment.learner.build(dataset)
        return [p.detach().clone() for p in model.parameters()]
    except Exception:  # noqa: BLE001 - a learner we cannot rebuild: no movement metric
        return None


class ParamMovement:
    """``||theta_t - theta_0|| / ||theta_0||``; theta_0 = parameters at step 0."""

    def __init__(self, experiment: Any, dataset: Dataset) -> None:
        self.experiment, self.dataset = experiment, dataset
        self.theta0: list[torch.Tensor] | None = None

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        if not isinstance(model, nn.Module):
            return {}
        current = [p.detach() for p in model.parameters()]
        if self.theta0 is None:
            if step == 0:
                self.theta0 = [p.clone() for p in current]
            else:
                init = initial_parameters(self.experiment, self.dataset)
                if init is None or [t.shape for t in init] != [t.shape for t in current]:
                    return {}
                self.theta0 = [t.to(c.device, c.dtype) for t, c in zip(init, current, strict=True)]
        return {names.PARAM_MOVEMENT: param_movement(self.theta0, current)}


# ------------------------------------------------------------------------------------- NTK


class NTKMeasure:
    """Change of the empirical NTK since the first evaluation, and its target alignment."""

    def __init__(self, analysis: Any, dataset: Dataset, device: torch.device) -> None:
        n = min(analysis.ntk_batch, dataset.n_train)
        self.x = dataset.x_train[:n].to(device)
        self.targets = targets_matrix(dataset.y_train[:n], dataset.n_classes)
        self.m = analysis.ntk_projections
        self.max_params = analysis.ntk_max_params
        self.k0: torch.Tensor | None = None
        self.skip: str | None = None
        self.projection: torch.Tensor | None = None

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        if self.skip is not None or not isinstance(model, nn.Module):
            return {}
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if n_params > self.max_params:
            self.skip = f"{n_params} parameters > analysis.ntk_max_params={self.max_params}"
            print(f"grokspec: NTK measure skipped: {self.skip}", file=sys.stderr)
            return {}
        if self.projection is None and self.m > 0:
            n_out = _eval_forward(model, self.x[:1]).reshape(1, -1).shape[1]
            self.projection = projection_matrix(n_out, self.m) if self.m < n_out else None
        k = empirical_ntk(model, self.x, self.projection)
        if self.k0 is None:
            self.k0 = k  # resumed runs: the change is measured from the first evaluation
        return {
            names.NTK_CHANGE: kernel_change(self.k0, k),
            names.NTK_ALIGNMENT: kernel_alignment(k, self.targets),
        }


# --------------------------------------------------------------------------- feature rank


def preactivation_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Linear maps whose output feeds a nonlinearity, by module path.

    Two patterns cover grokspec's networks: in an ``nn.Sequential``, a ``nn.Linear``
    followed by a parameter-free module (the MLP's ``Linear, activation`` pairs); and any
    ``nn.Linear`` named ``mlp_in`` (a transformer block's MLP, each expert's MLP).
    """
    found: dict[str, nn.Module] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Sequential):
            kids = list(mod.named_children())
            for (a, ma), (_, mb) in zip(kids[:-1], kids[1:], strict=True):
                if isinstance(ma, nn.Linear) and not any(True for _ in mb.parameters()):
                    found[f"{name}.{a}" if name else a] = ma
        elif isinstance(mod, nn.Linear) and name.split(".")[-1] == "mlp_in":
            found[name] = mod
    return found


class FeatureRank:
    """``progress/feature_rank/<layer>`` on a fixed batch of training inputs."""

    def __init__(self, analysis: Any, dataset: Dataset, device: torch.device) -> None:
        self.x = dataset.x_train[: min(analysis.rank_batch, dataset.n_train)].to(device)
        self.tol = analysis.rank_tolerance

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        if not isinstance(model, nn.Module):
            return {}
        layers = preactivation_layers(model)
        captured: dict[str, list[torch.Tensor]] = {k: [] for k in layers}
        hooks = [
            mod.register_forward_hook(
                lambda _m, _i, out, key=key: captured[key].append(out.reshape(-1, out.shape[-1]))
            )
            for key, mod in layers.items()
        ]
        try:
            _eval_forward(model, self.x)
        finally:
            for h in hooks:
                h.remove()
        return {
            names.FEATURE_RANK.format(layer=k): float(numerical_rank(torch.cat(v), self.tol))
            for k, v in captured.items()
            if v and sum(t.shape[0] for t in v) >= 2
        }


# -------------------------------------------------------------------------------- Fourier


def operand_embeddings(model: nn.Module, p: int, n_operands: int = 2) -> list[torch.Tensor]:
    """The (p, d) input embedding of each operand token, as the Fourier measures read it.

    A token embedding (``model.embed``, shared by both operands: the transformer, the MLP
    with ``input_encoding: embedding``); else, for one-hot inputs, the first linear layer's
    weight columns per operand (one-hot MLP, linear model): column block ``i`` of width
    ``vocab`` multiplies operand ``i``'s one-hot code. Empty when neither is found.
    """
    emb = getattr(model, "embed", None)
    if isinstance(emb, nn.Embedding) and emb.num_embeddings >= p:
        return [emb.weight[:p]]
    vocab = getattr(model, "vocab", None)
    if isinstance(vocab, int) and vocab >= p:
        first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
        if first is not None and first.in_features >= n_operands * vocab:
            w = first.weight
            return [w[:, i * vocab : i * vocab + p].T for i in range(n_operands)]
    return []


class FourierMeasure:
    """Fourier sparsity, key frequencies, restricted and excluded loss (Nanda et al. 2023)."""

    def __init__(self, experiment: Any, dataset: Dataset, device: torch.device) -> None:
        self.top_k = experiment.analysis.fourier_top_k
        self.p = int(dataset.info.get("p", dataset.vocab_size or 0))
        op = dataset.info.get("op")
        self.sign = {"x+y": 1, "x-y": -1}.get(op) if isinstance(op, str) else None
        self.grid = self._grid(dataset, device) if self.sign is not None else None
        train = experiment.train

        def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            from grokspec.training.evaluation import loss_fn

            return loss_fn(logits, y, dataset, train)

        self.loss = loss

    def _grid(self, dataset: Dataset, device: torch.device) -> tuple | None:
        """All p*p pairs as model inputs in grid order (row x*p+y), their labels and the
        training rows; None unless train + test hold every pair exactly once."""
        p = self.p
        try:
            ox = torch.cat([dataset.meta_train["operand_x"], dataset.meta_test["operand_x"]])
            oy = torch.cat([dataset.meta_train["operand_y"], dataset.meta_test["operand_y"]])
        except KeyError:
            return None
        idx = ox.long() * p + oy.long()
        if idx.numel() != p * p or not torch.equal(idx.sort().values, torch.arange(p * p)):
            return None
        order = idx.argsort()
        x = torch.cat([dataset.x_train, dataset.x_test])[order].to(device)
        # Restricted loss judges the true function: the clean labels where label_noise
        # replaced some; excluded loss (training pairs) the labels actually trained on.
        clean = dataset.meta_train.get("clean_label", dataset.y_train)
        y_true = torch.cat([clean, dataset.y_test])[order]
        noisy = "clean_label" in dataset.meta_train
        y_trained = torch.cat([dataset.y_train, dataset.y_test])[order] if noisy else y_true
        train_rows = idx[: dataset.n_train]
        return x, y_true, y_trained, train_rows

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        if not isinstance(model, nn.Module) or self.p < 3:
            return {}
        embs = operand_embeddings(model, self.p)
        if not embs:
            return {}
        sparsity, keys = fourier_sparsity(embs, self.top_k)
        out = {names.FOURIER_SPARSITY: sparsity}
        out.update({names.FOURIER_KEY_FREQ.format(i=i): float(k) for i, k in enumerate(keys)})
        if self.grid is not None and self.sign is not None:
            x, y_true, y_trained, train_rows = self.grid
            logits = _eval_forward(model, x).cpu()
            r, e = restricted_and_excluded(logits, y_true, train_rows, keys, self.sign, self.loss)
            if y_trained is not y_true:
                _, e = restricted_and_excluded(
                    logits, y_trained, train_rows, keys, self.sign, self.loss
                )
            out[names.RESTRICTED_LOSS] = r
            out[names.EXCLUDED_LOSS] = e
        return out


# ------------------------------------------------------------------------------- pathways


class PathwayMeasure:
    """Li et al. 2025 routing metrics for a model with ``routing(tokens)`` (moe_transformer)."""

    def __init__(self, analysis: Any, dataset: Dataset, device: torch.device) -> None:
        n = min(analysis.pathway_batch, dataset.n_train)
        self.x = dataset.x_train[:n].to(device)
        self.y = dataset.y_train[:n].cpu()

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        if not callable(getattr(model, "routing", None)):
            return {}
        routes, outputs = pathways_of(model, self.x)
        out = {names.PATHWAY_DISTANCE: pathway_distance(routes, self.y)}
        if len(outputs) >= 2:
            out[names.PATHWAY_CONSISTENCY] = pathway_consistency(outputs)
        return out


# -------------------------------------------------------------------------------- builder


def _every(measure: Measure, n: int) -> Measure:
    """Run ``measure`` at every n-th evaluation only (the first evaluation always)."""
    if n <= 1:
        return measure
    count = {"i": 0}

    def wrapped(step: int, model: Any) -> dict[str, float]:
        i = count["i"]
        count["i"] += 1
        return measure(step, model) if i % n == 0 else {}

    return wrapped


def build_measures(
    experiment: Any, dataset: Dataset, device: torch.device
) -> tuple[list[Measure], list[Monitor]]:
    """The experiment's progress measures (model -> metrics) and history monitors."""
    analysis = experiment.analysis
    chosen = resolve_measures(analysis, experiment.learner, experiment.dataset)
    measures: list[Measure] = []
    monitors: list[Monitor] = []
    for name in chosen:
        if name == "weight_norm":
            measures.append(weight_norm_measure())
        elif name == "param_movement":
            measures.append(ParamMovement(experiment, dataset))
        elif name == "ntk":
            measures.append(_every(NTKMeasure(analysis, dataset, device), analysis.ntk_every))
        elif name == "feature_rank":
            measures.append(FeatureRank(analysis, dataset, device))
        elif name == "fourier":
            measures.append(FourierMeasure(experiment, dataset, device))
        elif name == "pathways":
            measures.append(PathwayMeasure(analysis, dataset, device))
        elif name == "early_warning":
            w, threshold = analysis.warning, experiment.train.fit_threshold
            monitors.append(
                lambda history, w=w, t=threshold: warning_from_history(
                    history, t, w.window, w.min_drop
                )
            )
    return [_every(m, analysis.measure_every) for m in measures], monitors
