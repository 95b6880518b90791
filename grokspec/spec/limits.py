"""Sizes a run cannot have: rejected at validation, before anything is built or logged.

``learner.width: 1000000000`` used to validate, create the MLflow run, then die in torch with
"can't allocate 248000000000 bytes". :func:`check_limits` estimates a **lower bound** on the
memory a run needs from the spec alone — the dataset pool, the parameters and their
gradients, one layer's activations for one batch — and rejects the spec when even that
exceeds the memory limit (this machine's physical RAM, or ``$GROKSPEC_MEMORY_LIMIT_GB``).
Being a lower bound, it never rejects a spec that would fit; it catches the absurd ones
(a typo'd width, a d_model of a million, 100 000 spurious tokens on a large table). The GP's
own, tighter kernel estimate stays in :class:`~grokspec.learners.gp.GPSpec`.

Also rejected here: a train split that would be empty, and an integer ``train.batch_size``
larger than the training set (it would silently become full-batch training).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from grokspec.spec.base import field_error

if TYPE_CHECKING:
    from grokspec.spec.experiment import Experiment

GIB = 2**30


def memory_limit_bytes() -> tuple[float, str]:
    """The limit and where it comes from."""
    env = os.environ.get("GROKSPEC_MEMORY_LIMIT_GB")
    if env:
        try:
            return float(env) * GIB, "$GROKSPEC_MEMORY_LIMIT_GB"
        except ValueError:
            pass
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return float(ram), "this machine's RAM"
    except (ValueError, OSError, AttributeError):
        return 1024.0 * GIB, "an assumed 1 TiB"


def _shape(ds: Any) -> tuple[int, int, int]:
    """(input positions or feature columns, vocabulary size (tokens; 1 for features), number
    of outputs): lower bounds from the spec's fields, without building anything."""
    spurious = ds.spurious_dims.count if getattr(ds, "spurious_dims", None) else 0
    kind = getattr(ds, "kind", "")
    if ds.input_kind == "tokens":
        if kind == "permutation":
            vocab = math.factorial(int(ds.n))
        else:
            vocab = int(getattr(ds, "p", 2) or 2)
        return 2 + spurious, vocab, vocab
    width = int(getattr(ds, "dim", None) or getattr(ds, "n_bits", None) or 1)
    outputs = int(getattr(ds, "classes", None) or 1)
    return width + spurious, 1, outputs


def _param_count(learner: Any, positions: int, vocab: int, outputs: int) -> tuple[int, str]:
    """A lower bound on the parameter count, and the field that drives it."""
    kind = learner.kind
    tokens_in = positions * vocab  # one-hot inputs
    if kind in ("mlp", "bayesian_mlp"):
        width, depth = int(learner.width), int(learner.depth)
        if getattr(learner, "input_encoding", "one_hot") == "embedding" and vocab > 1:
            first = vocab * learner.embed_dim + positions * learner.embed_dim * width
        else:
            first = tokens_in * width
        n = first + (depth - 1) * width * width + width * outputs
        return (2 * n if kind == "bayesian_mlp" else n), "learner.width"
    if kind in ("transformer", "moe_transformer"):
        d, layers = int(learner.d_model), int(learner.layers)
        experts = int(getattr(learner, "experts", 1))
        n = vocab * d + layers * (4 * d * d + 2 * d * int(learner.d_mlp) * experts) + d * outputs
        return n, "learner.d_model"
    if kind == "linear":
        return tokens_in * outputs, "dataset"
    return 0, "learner"


def check_limits(exp: Experiment) -> None:
    """Raise a :func:`field_error` when the spec cannot run (see the module docstring)."""
    ds, train = exp.dataset, exp.train
    pool = ds.pool_size()
    n_train = ds.n_train_for(pool) if pool is not None else None
    if pool is not None and (n_train is None or n_train < 1 or pool - n_train < 1):
        raise field_error("dataset", f"the pool has {pool} example(s): too few for a train "
                          "and a test split (each needs at least one)")
    bs = train.batch_size
    if n_train is not None and bs != "full" and int(bs) > n_train:
        raise field_error("train.batch_size", f"batch_size={bs} is larger than the {n_train} "
                          f"training examples (use full, or at most {n_train})")
    positions, vocab, outputs = _shape(ds)
    params, driver = _param_count(exp.learner, positions, vocab, outputs)
    item = 8 if getattr(exp.learner, "dtype", "float32") == "float64" else 4
    rows = (n_train or 1) if bs == "full" else int(bs)
    data = (pool or 0) * positions * (8 if ds.input_kind == "tokens" else 4)
    weights = 2 * params * item  # the parameters and their gradients, at least
    width = int(getattr(exp.learner, "width", 0) or getattr(exp.learner, "d_model", 0) or 0)
    activations = rows * (width + outputs) * item
    need = data + weights + activations
    limit, source = memory_limit_bytes()
    if need <= limit:
        return
    parts = {"dataset": data, "parameters and gradients": weights, "activations": activations}
    biggest = max(parts, key=lambda k: parts[k])
    field = {"dataset": "dataset", "parameters and gradients": driver,
             "activations": driver if width > rows else "train.batch_size"}[biggest]
    spurious = ds.spurious_dims.count if getattr(ds, "spurious_dims", None) else 0
    if spurious > positions - spurious and biggest != "activations":
        field = "dataset.spurious_dims.count"  # the extra inputs are what does not fit
    detail = ", ".join(f"{k} {v / GIB:.1f} GiB" for k, v in parts.items())
    raise field_error(field, f"this run needs at least {need / GIB:.1f} GiB of memory ({detail})"
                      f", over the limit of {limit / GIB:.1f} GiB ({source}): make "
                      f"{field} smaller (or set GROKSPEC_MEMORY_LIMIT_GB on a bigger machine)")
