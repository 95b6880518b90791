"""Training throughput of grokspec's loop against the loops grokking researchers write.

Every number is process CPU time (``time.process_time``) with one torch thread, contenders
interleaved (A B C A B C ...) so that load on a shared machine hits all alike; the table
prints medians and each contender's ratio against the baseline measured in the same run.
The baselines are bench/peers.py's hand-written loops, never grokspec's own models.

1. MLP (specs/quickstart.yaml: x+y mod 97, 30% train, width 512, x^2, full batch), evaluating
   train and test loss and accuracy every 100 steps: a hand-written one-hot ``nn.Linear``
   loop vs ``grokspec.training.loop.fit`` (measures off, and with the default measures).
2. Transformer, training steps (every loop, grokspec's and the peers', also evaluates the
   train and test sets once at the start and once at the end, as ``fit`` does):
   a. 1 layer, p=97 x+y, 30% train, full batch (Nanda et al. 2023's setting): the
      progress-measures-style loop vs grokspec (specs/modadd_transformer.yaml's model at p=97);
   b. 2 layers, p=97 x/y, 50% train, batch 512 (Power et al.'s; specs/moddiv_transformer.yaml):
      the danielmamay/grokking-style and ironjr/grokfast-style loops vs grokspec.

    python bench/throughput.py                 # both tables, 3 repeats
    python bench/throughput.py --repeats 1 --only transformer

Targets (issue 14): transformer steps/s >= 2x the peers' loops in both settings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import (  # noqa: E402 - bench/ is not a package
    DecoderPostLN,
    DecoderPreLN,
    NandaTransformer,
    OneHotMLP,
    cross_entropy_high_precision,
    with_op_token,
)

from grokspec.spec.loading import validate_data  # noqa: E402

try:
    from grokspec.training.loop import fit
except ImportError:  # grokspec before the one loop (issue 10): for "before" tables

    def fit(experiment, device, dataset=None, measures=True):  # noqa: ANN001, ANN201
        from grokspec.runners.gradient import GradientRunner

        from grokspec.metrics.measures import build_measures
        from grokspec.training.runner import RunContext

        ctx = RunContext(experiment, dataset, torch.device(device))
        if measures:
            ctx.measures, ctx.monitors = build_measures(experiment, dataset, ctx.device)
        GradientRunner().run(ctx)
        return ctx

Contender = Callable[[int], float]  # steps -> CPU seconds


def spec(dataset: dict, learner: dict, train: dict, metrics: list[str] | None = None,  # noqa: ANN201
         lr: float = 1e-3):
    return validate_data({
        "name": "bench", "seed": 0, "dataset": dataset, "learner": learner,
        "train": {"optimizer": {"kind": "adamw", "lr": lr, "weight_decay": 1.0,
                                "betas": [0.9, 0.98]}, **train},
        "analysis": {"metrics": metrics},
        "tracking": {"experiment": "bench"},
    })


def cpu(fn: Callable[[], None]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def grokspec_loop(exp, eval_every: int | None, measures: bool) -> Contender:  # noqa: ANN001
    data = exp.dataset.build(exp.seed)

    def run(steps: int) -> float:
        e = exp.model_copy(deep=True)
        e.train.steps, e.train.stop = steps, None
        e.train.eval_every = eval_every or steps
        return cpu(lambda: fit(e, "cpu", dataset=data, measures=measures))

    return run


def adamw(params) -> torch.optim.Optimizer:  # noqa: ANN001
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))


# ----------------------------------------------------------------------------- the MLP


def hand_mlp(exp, eval_every: int) -> Contender:  # noqa: ANN001
    """A researcher's loop: full batch, loss/acc on train and test every ``eval_every``."""
    data = exp.dataset.build(exp.seed)
    xtr, ytr, xte, yte = data.x_train, data.y_train, data.x_test, data.y_test
    p = exp.dataset.p

    def run(steps: int) -> float:
        torch.manual_seed(0)
        model = OneHotMLP(p, exp.learner.width)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1.0, betas=(0.9, 0.98))

        def loop() -> None:
            for step in range(1, steps + 1):
                loss = F.cross_entropy(model(xtr), ytr)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step % eval_every == 0 or step == 1:
                    with torch.no_grad():
                        for x, y in ((xtr, ytr), (xte, yte)):
                            out = model(x)
                            _ = F.cross_entropy(out, y).item()
                            _ = (out.argmax(-1) == y).float().mean().item()

        return cpu(loop)

    return run


# ---------------------------------------------------------------------- the transformers


def peer_transformer(kind: str, exp, layers: int, batch: int | None) -> Contender:  # noqa: ANN001
    data = exp.dataset.build(exp.seed)
    p = exp.dataset.p
    xtr, ytr = data.x_train, data.y_train

    def run(steps: int) -> float:
        torch.manual_seed(0)
        if kind == "nanda":
            model: torch.nn.Module = NandaTransformer(p + 1, 3, layers=layers)
            x_all = torch.cat([xtr, torch.full_like(xtr[:, :1], p)], 1)
            x_all_test = torch.cat([data.x_test, torch.full_like(data.x_test[:, :1], p)], 1)
            forward = lambda x: model(x)[:, -1]  # noqa: E731
            loss_fn = cross_entropy_high_precision
        else:
            cls = DecoderPostLN if kind == "danielmamay" else DecoderPreLN
            model = cls(layers, 128, 4, p + 2, 4)
            x_all, x_all_test = with_op_token(xtr, p), with_op_token(data.x_test, p)
            if kind == "danielmamay":
                forward = lambda x: model(x)[-1]  # noqa: E731
            else:
                forward = lambda x: model(x.T)[-1]  # noqa: E731
            loss_fn = F.cross_entropy
        opt = adamw(model.parameters())
        n = len(xtr)
        gen = torch.Generator().manual_seed(0)
        x_eval = torch.cat([x_all, x_all_test])
        y_eval = torch.cat([ytr, data.y_test])

        def evaluate() -> None:  # as grokspec's fit does at its first and last step
            model.eval()
            with torch.no_grad():
                for i in range(0, len(x_eval), 4096):
                    out = forward(x_eval[i : i + 4096])
                    _ = loss_fn(out, y_eval[i : i + 4096]).item()
                    _ = (out.argmax(-1) == y_eval[i : i + 4096]).float().mean().item()
            model.train()

        def loop() -> None:
            evaluate()
            perm, at = torch.randperm(n, generator=gen), 0
            for _ in range(steps):
                if batch is None:
                    xb, yb = x_all, ytr
                else:
                    if at + batch > n:
                        perm, at = torch.randperm(n, generator=gen), 0
                    idx = perm[at : at + batch]
                    at += batch
                    xb, yb = x_all[idx], ytr[idx]
                loss = loss_fn(forward(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            evaluate()

        return cpu(loop)

    return run


def table(title: str, contenders: dict[str, Contender], steps: int, repeats: int,
          baseline: str) -> None:
    for c in contenders.values():  # warm up (allocators, kernels) outside the timing
        c(2)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for k, c in contenders.items():
            times[k].append(c(steps))
    rate = {k: steps / statistics.median(v) for k, v in times.items()}
    print(f"\n{title}\n{steps} steps, median of {repeats}, CPU steps/s (1 thread)")
    print(f"  {'loop':<46}{'steps/s':>8}  ratio to the first row")
    for k, r in rate.items():
        print(f"  {k:<46}{r:>8.2f}  {r / rate[baseline]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["mlp", "transformer"], default=None)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the step counts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}; process CPU time, 1 thread; shared machine: noisy")
    modadd = {"kind": "modular", "op": "x+y", "p": 97, "train_fraction": 0.3}
    moddiv = {"kind": "modular", "op": "x/y", "p": 97, "train_fraction": 0.5}
    if args.only in (None, "mlp"):
        mlp = {"kind": "mlp", "depth": 1, "width": 512, "activation": "quadratic"}
        quick = spec(modadd, mlp, {"batch_size": "full"}, [], lr=3e-3)
        table("1. MLP, quickstart (evaluating every 100 steps)", {
            "hand-written one-hot nn.Linear loop": hand_mlp(quick, 100),
            "grokspec fit, measures off": grokspec_loop(quick, 100, measures=False),
            "grokspec fit, default measures": grokspec_loop(
                spec(modadd, mlp, {"batch_size": "full"}, None, lr=3e-3), 100, True),
        }, int(300 * args.scale), args.repeats, "hand-written one-hot nn.Linear loop")
    if args.only in (None, "transformer"):
        one = spec(modadd, {"kind": "transformer", "layers": 1, "d_model": 128, "heads": 4,
                            "d_mlp": 512}, {"batch_size": "full"}, [])
        table("2a. Transformer, 1 layer, p=97, full batch (training steps)", {
            "progress-measures-style loop (Nanda et al.)": peer_transformer("nanda", one, 1, None),
            "grokspec fit": grokspec_loop(one, None, measures=False),
        }, int(30 * args.scale), args.repeats, "progress-measures-style loop (Nanda et al.)")
        two = spec(moddiv, {"kind": "transformer", "layers": 2, "d_model": 128, "heads": 4,
                            "d_mlp": 512, "layer_norm": True}, {"batch_size": 512}, [])
        table("2b. Transformer, 2 layers, p=97, batch 512 (training steps)", {
            "danielmamay/grokking-style loop": peer_transformer("danielmamay", two, 2, 512),
            "ironjr/grokfast-style loop": peer_transformer("grokfast", two, 2, 512),
            "grokspec fit": grokspec_loop(two, None, measures=False),
        }, int(100 * args.scale), args.repeats, "danielmamay/grokking-style loop")


if __name__ == "__main__":
    main()
