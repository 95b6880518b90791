"""GPU throughput: the loop, batched members vs sequential, torch.compile / CUDA graphs.

One short script (well under 10 minutes on one GPU) that prints training steps/s for

1. the real loop (:func:`grokspec.training.loop.train`) on ``specs/quickstart.yaml`` and the
   1-layer transformer (``specs/modadd_transformer.yaml``);
2. 16 and 64 members of quickstart (an lr grid, so the per-member optimizer of
   :mod:`grokspec.training.batched_optim` runs) as one batch vs one after another, through
   the real loop, at full batch and at minibatch 256;
3. the bare training step (:func:`grokspec.training.cost.step_function`, the loop's own
   composition of loss, backward, Grokfast, optimizer) eager vs ``torch.compile`` vs
   ``torch.compile(mode="reduce-overhead")`` (CUDA graphs), for both models.

Loop rows are measured by difference: a run of ``2S`` steps minus a run of ``S`` steps, so
model building and the first/last evaluation cancel out. GPU times are wall time after
``torch.cuda.synchronize``; on CPU, process CPU time with one thread.

Nothing here is a measured GPU result unless you ran it on a GPU: the session that wrote it
had none (see the README). ``--smoke`` runs everything tiny on the CPU (torch.compile with the
``eager`` backend; no CUDA graphs) so the script is tested to execute
(tests/test_gpu.py::test_gpu_bench_smoke_runs_on_cpu).

    python bench/gpu.py            # on a GPU machine
    python bench/gpu.py --smoke    # seconds, on CPU
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from grokspec.spec.features import runner_name
from grokspec.spec.loading import load_spec
from grokspec.training.batched import SingleLearner
from grokspec.training.batches import Batch, BatchStream
from grokspec.training.cost import step_function
from grokspec.training.loop import Member, train
from grokspec.training.runner import load_runner

SPECS = Path(__file__).resolve().parent.parent / "specs"


def clock(device: torch.device) -> Callable[[], float]:
    if device.type == "cuda":
        def now() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()

        return now
    return time.process_time


def model_spec(name: str, smoke: bool, **train: Any) -> Any:
    """A shipped spec, measures off; tiny in --smoke."""
    sets = ["analysis.metrics=[]", "train.stop=null"]
    sets += [f"train.{k}={v}" for k, v in train.items()]
    if smoke:
        sets += ["dataset.p=23"]
        if name == "modadd_transformer":
            sets += ["learner.d_model=32", "learner.d_mlp=64"]
        else:
            sets += ["learner.width=64"]
    return load_spec(SPECS / f"{name}.yaml", sets)


def loop_seconds(exps: list[Any], device: torch.device, steps: int, batched: bool) -> float:
    """Seconds per step of the real loop (difference of a 2S and an S step run)."""
    runner = load_runner(runner_name(exps[0]))
    now = clock(device)
    out = []
    for s in (steps, 2 * steps):
        run = [e.model_copy(update={"train": e.train.model_copy(update={
            "steps": s, "eval_every": s})}) for e in exps]
        members = [Member(e, e.dataset.build(e.seed)) for e in run]
        groups = [members] if batched else [[m] for m in members]
        t0 = now()
        for g in groups:
            train(g, runner, device)
        out.append(now() - t0)
        assert all(m.error is None for m in members), [str(m.error) for m in members]
    return (out[1] - out[0]) / steps if out[1] > out[0] else float("nan")  # nan: noise


def step_seconds(exp: Any, device: torch.device, steps: int, compile_mode: str | None,
                 backend: str) -> float:
    """Seconds per bare training step, the model optionally under torch.compile."""
    runner = load_runner(runner_name(exp))
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(exp.seed)
    model = runner.build(exp, data).to(device)
    if compile_mode is not None:
        kwargs = {"backend": backend} if backend != "inductor" else {"mode": compile_mode}
        model = torch.compile(model, **kwargs)
    stream = BatchStream(data.n_train, exp.train.batch_size, exp.seed, device)
    x_all, y_all = data.x_train.to(device), data.y_train.to(device)

    def draw() -> list[Batch]:
        idx = stream.next()
        x, y = (x_all, y_all) if idx is None else (x_all[idx], y_all[idx])
        return [Batch(idx, x, y, data, exp.train)]

    step = step_function(SingleLearner(model, runner), [exp.train], draw)
    for _ in range(5):  # compilation, graph capture, allocator
        step()
    now = clock(device)
    t0 = now()
    for _ in range(steps):
        step()
    return (now() - t0) / steps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny, on CPU: checks that it runs")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    steps = 3 if args.smoke else args.steps
    sizes = (2, 4) if args.smoke else (16, 64)
    if device.type == "cpu":
        torch.set_num_threads(1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (1 thread)"
    print(f"torch {torch.__version__} on {name}{' --smoke' if args.smoke else ''}; "
          f"steps/s measured here, on this machine, now", flush=True)
    if args.smoke:
        print("--smoke: tiny sizes and a handful of steps; these numbers measure nothing")
    rows: list[tuple[str, str]] = []

    for spec in ("quickstart", "modadd_transformer"):
        per = loop_seconds([model_spec(spec, args.smoke)], device, steps, batched=False)
        rows.append((f"{spec}: the loop, one run", f"{1 / per:.1f} steps/s"))

    for bs in ("full", 64 if args.smoke else 256):
        for n in sizes:
            lrs = [1e-3 * (1 + j % 8) for j in range(n)]
            exps = [model_spec("quickstart", args.smoke, batch_size=bs,
                               **{"optimizer.lr": lr}) for lr in lrs]
            seq = loop_seconds(exps[:1], device, steps, batched=False) * n  # identical members
            vec = loop_seconds(exps, device, steps, batched=True)
            rows.append((f"quickstart x{n} (lr grid), batch {bs}: batched vs one after another",
                         f"{n / vec:.1f} vs {n / seq:.1f} member-steps/s ({seq / vec:.2f}x)"))

    backend = "eager" if args.smoke else "inductor"
    modes: list[tuple[str, str | None]] = [("eager", None), ("torch.compile", "default")]
    if device.type == "cuda":
        modes.append(("torch.compile reduce-overhead (CUDA graphs)", "reduce-overhead"))
    for spec in ("quickstart", "modadd_transformer"):
        exp = model_spec(spec, args.smoke)
        base = None
        for label, mode in modes:
            try:
                per = step_seconds(exp, device, steps, mode, backend)
            except Exception as exc:  # noqa: BLE001 - a backend that fails is a result too
                rows.append((f"{spec}: step, {label}", f"failed: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:100]}"))
                continue
            base = base or per
            rows.append((f"{spec}: step, {label}" + (f" [{backend}]" if mode else ""),
                         f"{1 / per:.1f} steps/s ({base / per:.2f}x eager)"))

    print("\n| measurement | result |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
