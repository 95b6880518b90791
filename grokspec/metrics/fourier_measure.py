"""The Fourier progress measures wired to a run (Nanda et al. 2023; grokspec's variant).

Split from :mod:`grokspec.metrics.measures` (which builds every measure) because the Fourier
measure carries the most state: the evaluation grid of all p x p pairs, the key-frequency
definition in use, and the restricted/excluded losses. The numbers come from the pure
functions in :mod:`grokspec.metrics.fourier`; the model is read only through the learner
contract (token embeddings, probe points) and the evaluation's captured forward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.contract import PROBES, TOKEN_EMBEDDINGS, capabilities, require
from grokspec.metrics import names
from grokspec.metrics.capture import EvalCapture
from grokspec.metrics.fourier import (
    fourier_sparsity,
    nanda2023_key_frequencies,
    restricted_and_excluded,
    sum_directions,
)


def operand_embeddings(model: nn.Module, p: int) -> list[torch.Tensor]:
    """The (p, d) input embedding of each operand token, as the Fourier measures read it:
    the first ``p`` rows (the operand tokens) of the contract's ``token_embeddings()`` (one
    matrix per position, or one shared by every position)."""
    require(model, {TOKEN_EMBEDDINGS}, "fourier")
    embs = model.token_embeddings()  # type: ignore[attr-defined]
    return [e[:p] for e in embs if e.shape[0] >= p]


class FourierMeasure:
    """Fourier sparsity, key frequencies, restricted and excluded loss (Nanda et al. 2023)."""

    def __init__(
        self, experiment: Any, dataset: Dataset, device: torch.device,
        capture: EvalCapture | None = None,
    ) -> None:
        self.top_k = experiment.analysis.fourier_top_k
        # analysis.key_frequencies: Nanda et al.'s neuron frequencies read the first hidden
        # layer's post-activations on every pair (grokspec.metrics.fourier).
        self.nanda = experiment.analysis.key_frequencies == "nanda2023"
        self.p = int(dataset.info.get("p", dataset.vocab_size or 0))
        op = dataset.info.get("op")
        self.sign = {"x+y": 1, "x-y": -1}.get(op) if isinstance(op, str) else None
        self.grid = self._grid(dataset, device) if self.sign is not None or self.nanda else None
        # The evaluation runs the training then the test set: all p*p pairs, in that order.
        self.evaluated = torch.cat([dataset.x_train, dataset.x_test]).to(device)
        self.capture = capture if capture is not None else EvalCapture()
        if self.grid is not None and self.sign is not None:
            self.capture.want_outputs()
        if self.grid is not None and self.nanda:
            self.capture.want_probes("post", None, first_only=True)
        train = experiment.train

        def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            from grokspec.training.evaluation import loss_fn

            return loss_fn(logits, y, dataset, train)

        self.loss = loss
        #: key_frequencies_at: final (Nanda et al.'s code): per evaluation (step, logit mean,
        #: Fourier coefficients per frequency, train-row logits), decided at :meth:`finish`
        self.at_end = experiment.analysis.key_frequencies_at == "final"
        self.kept: list[tuple[int, torch.Tensor, dict[int, torch.Tensor], torch.Tensor]] = []
        self._dirs: dict[int, torch.Tensor] = {}

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
        # Restricted loss judges the true function: the clean labels where label_noise
        # replaced some; excluded loss (training pairs) the labels actually trained on.
        clean = dataset.meta_train.get("clean_label", dataset.y_train)
        y_true = torch.cat([clean, dataset.y_test])[order]
        noisy = "clean_label" in dataset.meta_train
        y_trained = torch.cat([dataset.y_train, dataset.y_test])[order] if noisy else y_true
        train_rows = idx[: dataset.n_train]
        return order, y_true, y_trained, train_rows

    def grid_logits(self, model: nn.Module, step: int) -> torch.Tensor:
        """The model's outputs on all p*p pairs in grid order (row x*p+y), on the CPU: the
        evaluation's own outputs where the loop captured them."""
        assert self.grid is not None
        order = self.grid[0]
        rec = self.capture.take(model, self.evaluated, step)
        return rec.output(len(self.evaluated)).cpu()[order]

    def neuron_frequencies(self, model: Any, step: int) -> Any:
        """Nanda et al.'s key frequencies from the first probe point's post-activations on
        all p*p pairs (a transformer's at the last position); None without probes or grid."""
        if self.grid is None or PROBES not in capabilities(model):
            return None
        first = next(iter(model.probes()), None)
        if first is None:
            return None
        rec = self.capture.take(model, self.evaluated, step)
        acts = rec.probe(first, "post", self.p * self.p)
        if acts is None:
            return None
        if acts.ndim == 3:
            acts = acts[:, -1]
        return nanda2023_key_frequencies(acts.cpu()[self.grid[0]], self.p)

    def key_frequencies(self, model: Any, step: int) -> list[int] | None:
        """The key frequencies by the spec's definition (None: the model has none)."""
        if self.nanda:
            neurons = self.neuron_frequencies(model, step)
            return None if neurons is None else neurons.key_freqs
        return fourier_sparsity(operand_embeddings(model, self.p), self.top_k)[1]

    def dirs(self, k: int) -> torch.Tensor:
        """The grid directions of frequency ``k`` (cached: built once per run)."""
        if k not in self._dirs:
            assert self.sign is not None
            self._dirs[k] = sum_directions(self.p, [k], self.sign)
        return self._dirs[k]

    def keep(self, step: int, logits: torch.Tensor) -> None:
        """What the restricted and excluded losses of any key set need from this evaluation:
        the logit mean and each frequency's coefficients (every grid pair), and the
        training rows' logits. 1.8 MB per evaluation at p = 113, 30% (not the 5.9 MB of the
        full grid)."""
        assert self.grid is not None
        centred = logits.to(torch.float64)
        mean = centred.mean(dim=0, keepdim=True)
        centred = centred - mean
        coef = {k: self.dirs(k) @ centred for k in range(1, self.p // 2 + 1)}
        self.kept.append((step, mean, coef, logits[self.grid[3]].clone()))

    def finish(self, model: Any, step: int) -> dict[int, dict[str, float]]:
        """key_frequencies_at: final: the restricted and excluded losses of every kept
        evaluation with the final model's key frequencies, {step: metrics}."""
        if not self.kept or self.grid is None:
            return {}
        keys = self.key_frequencies(model, step)
        if keys is None:  # the final model has no key frequencies to read (no probes)
            return {}
        _, y_true, y_trained, train_rows = self.grid
        out = {}
        for at, mean, coef, train_logits in self.kept:
            along = sum((self.dirs(k).T @ coef[k] for k in sorted(set(keys))),
                        torch.zeros_like(mean))
            restricted = mean + along
            excluded = train_logits.to(torch.float64) - along[train_rows]
            out[at] = {names.RESTRICTED_LOSS: float(self.loss(restricted, y_true)),
                       names.EXCLUDED_LOSS: float(self.loss(excluded, y_trained[train_rows]))}
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"kept": list(self.kept)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kept = list(state["kept"])

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        require(model, {TOKEN_EMBEDDINGS}, "fourier")
        if self.p < 3:
            return {}
        embs = operand_embeddings(model, self.p)
        if not embs:
            return {}
        sparsity, keys = fourier_sparsity(embs, self.top_k)
        out = {names.FOURIER_SPARSITY: sparsity}
        if self.nanda:
            neurons = self.neuron_frequencies(model, step)
            if neurons is None:  # no hidden neurons (or not every pair): no key frequencies
                return out
            keys = neurons.key_freqs
            out[names.FOURIER_KEY_FREQ_COUNT] = float(len(keys))
            out[names.FOURIER_NEURON_FRAC] = neurons.mean_frac_explained
            logged = keys[: self.top_k]
        else:
            logged = keys
        out.update({names.FOURIER_KEY_FREQ.format(i=i): float(k) for i, k in enumerate(logged)})
        if self.grid is not None and self.sign is not None and self.at_end:
            self.keep(step, self.grid_logits(model, step))
        elif self.grid is not None and self.sign is not None:
            _, y_true, y_trained, train_rows = self.grid
            logits = self.grid_logits(model, step)
            r, e = restricted_and_excluded(logits, y_true, train_rows, keys, self.sign, self.loss)
            if y_trained is not y_true:
                _, e = restricted_and_excluded(
                    logits, y_trained, train_rows, keys, self.sign, self.loss
                )
            out[names.RESTRICTED_LOSS] = r
            out[names.EXCLUDED_LOSS] = e
        return out


# ------------------------------------------------------------------------------- pathways
