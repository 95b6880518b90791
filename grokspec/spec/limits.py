"""Sizes a run cannot have: rejected at validation, before anything is built or logged.

``learner.width: 1000000000`` used to validate, create the MLflow run, then die in torch with
"can't allocate 248000000000 bytes". :func:`check_limits` estimates the memory a run needs
from the spec alone — the dataset pool, the parameters and their gradients, one layer's
activations for one batch, and for transformers the first-layer tables, attention and the
evaluation chunk (within 2x of the measured peak, tests/test_robust_input.py) — and rejects
the spec when that exceeds the memory limit (this machine's physical RAM, or
``$GROKSPEC_MEMORY_LIMIT_GB``). It catches the absurd ones (a typo'd width, a d_model of a
million, 30 000 spurious tokens on a large table) before the run exists. The GP's
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
        encoding = getattr(learner, "input_encoding", "one_hot")
        if encoding == "embedding" and vocab > 1:
            first = vocab * learner.embed_dim + positions * learner.embed_dim * width
        elif encoding == "embedding_sum":
            first = vocab * learner.embed_dim + learner.embed_dim * width
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


EVAL_ROWS = 16384  # rows per evaluation forward pass, at most (metrics.capture.EVAL_CHUNK)


def _transformer_parts(
    learner: Any, positions: int, vocab: int, rows: int, pool: int | None, item: int
) -> dict[str, float]:
    """What a transformer allocates that scales with the sequence: the first layer's
    per-(position, token) tables (embedding + position, LayerNorm, Q/K/V: 5 d-wide rows each,
    kept with their gradients), and per layer the attention weights (batch x heads x queries
    x keys, stored for backward), the MLP's hidden activations (batch x queries x d_mlp, pre-
    and post-activation kept for backward) and every position's residual and K/V gathered per
    sample (batch x positions x d, five copies), for the training batch and, without
    gradients, one evaluation chunk. Checked against measured peak memory
    (tests/test_robust_input.py: within 2x)."""
    d, heads, d_mlp = int(learner.d_model), int(learner.heads), int(learner.d_mlp)
    layers = int(learner.layers)
    seq = positions + 1 + int(getattr(learner, "operator_token", False))  # x .. =
    n_tok = vocab + 2
    tables = 2 * seq * n_tok * 5 * d * item
    last_only = bool(getattr(learner, "last_position_only", True))
    queries = [1 if (last_only and i == layers - 1) else seq for i in range(layers)]
    # per layer and row: attention weights, MLP hidden, the queries' stream, and every
    # position's residual + K/V gathered (and concatenated) for the queries to attend to
    per_row_train = sum(heads * q * seq * 2 + q * d_mlp * 2 + q * d * 6 + seq * d * 10
                        for q in queries)
    # the evaluation runs the train and the test split one after the other
    ev = min(max(rows, (pool or rows) - rows) if pool else rows, EVAL_ROWS)
    per_row_eval = max(heads * q * seq + q * d_mlp + q * d * 3 + seq * d * 5 for q in queries)
    return {"first-layer tables": float(tables),
            "attention and MLP activations": float(rows * per_row_train * item),
            "evaluation batch": float(ev * per_row_eval * item)}


def estimate_bytes(exp: Experiment) -> float:
    """The memory estimate :func:`check_limits` compares with the limit."""
    return _estimate(exp)[0]


def _estimate(exp: Experiment) -> tuple[float, dict[str, float], str, int, int]:
    """(bytes needed, the parts, the field driving the parameters, activation width, rows)."""
    ds, train = exp.dataset, exp.train
    pool = ds.pool_size()
    n_train = ds.n_train_for(pool) if pool is not None else None
    bs = train.batch_size
    positions, vocab, outputs = _shape(ds)
    params, driver = _param_count(exp.learner, positions, vocab, outputs)
    item = 8 if getattr(exp.learner, "dtype", "float32") == "float64" else 4
    rows = (n_train or 1) if bs == "full" else int(bs)
    data = (pool or 0) * positions * (8 if ds.input_kind == "tokens" else 4)
    weights = 2 * params * item  # the parameters and their gradients, at least
    width = int(getattr(exp.learner, "width", 0) or getattr(exp.learner, "d_model", 0) or 0)
    activations = rows * (width + outputs) * item
    parts = {"dataset": data, "parameters and gradients": weights, "activations": activations}
    if exp.learner.kind in ("transformer", "moe_transformer"):
        parts.update(_transformer_parts(exp.learner, positions, vocab, rows, pool, item))
    # training and evaluation take turns: the larger of the two is held at the peak
    phases = ("attention and MLP activations", "evaluation batch")
    need = sum(v for k, v in parts.items() if k not in phases) + max(
        (parts[k] for k in phases if k in parts), default=0.0)
    return float(need), parts, driver, width, rows


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
    need, parts, driver, width, rows = _estimate(exp)
    limit, source = memory_limit_bytes()
    if need <= limit:
        return
    biggest = max(parts, key=lambda k: parts[k])
    field = {"dataset": "dataset", "parameters and gradients": driver,
             "activations": driver if width > rows else "train.batch_size",
             "first-layer tables": "learner.d_model",
             "attention and MLP activations": "train.batch_size",
             "evaluation batch": "dataset"}[biggest]
    spurious = ds.spurious_dims.count if getattr(ds, "spurious_dims", None) else 0
    if spurious > _shape(ds)[0] - spurious and biggest != "activations":
        field = "dataset.spurious_dims.count"  # the extra inputs are what does not fit
    detail = ", ".join(f"{k} {v / GIB:.1f} GiB" for k, v in parts.items())
    raise field_error(field, f"this run needs about {need / GIB:.1f} GiB of memory ({detail})"
                      f", over the limit of {limit / GIB:.1f} GiB ({source}): make "
                      f"{field} smaller (or set GROKSPEC_MEMORY_LIMIT_GB on a bigger machine)")


#: The largest float32: every number of a spec reaches torch, most as float32 tensors.
FLOAT32_MAX = 3.4028234663852886e38


def out_of_range(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Numbers no run can use: not finite (.inf, .nan), or beyond float32's range (1e300
    overflows when torch makes it a float32 tensor). Found before pydantic, reported with
    FILE:LINE like any other field error."""
    import math

    if isinstance(data, dict):
        return [hit for k, v in data.items() for hit in out_of_range(v, (*path, str(k)))]
    if isinstance(data, list):
        return [hit for i, v in enumerate(data) for hit in out_of_range(v, (*path, str(i)))]
    if isinstance(data, float) and not math.isfinite(data):
        return [(path, f"{data} is not a finite number (use a finite value)")]
    if isinstance(data, (int, float)) and not isinstance(data, bool) and (
            abs(data) > FLOAT32_MAX):
        return [(path, f"{data:g} is beyond float32's range (|x| <= 3.4e38): torch cannot "
                 "hold it (use a smaller value)")]
    return []
