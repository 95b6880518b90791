"""Several seeds of one experiment trained as one batched computation (``vectorize: true``).

Each seed still is its own MLflow child run, made by the ordinary
:func:`grokspec.run.run_experiment` (same params, tags, summary, phase, artifacts): one thread
per seed opens its run and hands its :class:`RunContext` to a shared :class:`SeedBatch`,
whose loop trains all the seeds' models at once with ``torch.func`` (``stack_module_state``,
``functional_call``, ``vmap``) and reports each seed's evaluations to that seed's context.

Why the numbers match a sequential run: every seed gets its own split, init and batch order
from its seed exactly as :class:`grokspec.runners.gradient.GradientRunner` would; the loss
summed over
seeds has, for each seed's slice of the stacked parameters, exactly that seed's gradient; and
Adam, AdamW and SGD update each element independently, so one torch optimizer over the stacked
tensors is the batched optimizer. Evaluation copies a seed's slice into a real module and
runs the standard metrics on it. Differences are float rounding of batched matmuls only.

When it pays (CPU, bench/sweep.py): at full batch the work is already large matmuls and
vmap's batched kernels are *slower* (0.5-0.65x in the issue's measurement, 0.64-0.72x in
bench/sweep.py's training-loop rows, one thread); with minibatches the per-step overhead is
shared (the issue measured ~1.6x at batch 256; on the busy 2-core machine this was written
on the loop-only ratio at 256 swung between 0.45x and 1.13x, i.e. no reliable gain). On a
GPU, batching many small models is where vmap is expected to pay (not measured here: no GPU).
``vectorize: auto`` therefore batches on a GPU, or on CPU for minibatches up to
:data:`AUTO_MAX_CPU_BATCH`; everywhere else it runs the seeds one after another.

Models that draw randomness in their forward pass (dropout, the
Bayesian net's sampling) or add their own loss term cannot be batched this way: their seeds
run one after another, with a note saying so.
"""

from __future__ import annotations

import copy
import sys
import threading
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from grokspec.spec.experiment import Experiment
from grokspec.sweep.executors import Outcome, Task, run_one
from grokspec.training.evaluation import batches, build_optimizer, loss_fn, standard_metrics
from grokspec.training.runner import Diverged, RunContext, runner_name

#: ``vectorize: auto`` on CPU batches seeds only for minibatches of at most this size.
AUTO_MAX_CPU_BATCH = 512


def spec_vectorizable(exp: Experiment) -> str | None:
    """Why the seeds of ``exp`` cannot be batched (None: they can, as far as the spec says)."""
    if runner_name(exp) != "gradient":
        return f"runner '{runner_name(exp)}' is not the gradient runner"
    if getattr(exp.learner, "dropout", 0.0):
        return "dropout draws different random masks per call"
    return None


def worth_it(exp: Experiment, n_train: int | None, device: str) -> str | None:
    """For ``vectorize: auto``: why batching would not speed this up (None: it would)."""
    on_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if on_gpu:
        return None
    bs = exp.train.batch_size
    if bs == "full" or (n_train is not None and int(bs) >= n_train):
        return "full-batch training on CPU: vmap measured 0.5-0.65x (slower)"
    if int(bs) > AUTO_MAX_CPU_BATCH:
        return f"batch_size {bs} > {AUTO_MAX_CPU_BATCH} on CPU: little to gain"
    return None


def model_vectorizable(model: nn.Module) -> str | None:
    """Why this built model cannot run under vmap with the same numbers as alone."""
    if callable(getattr(model, "penalty", None)):
        return "the model adds its own loss term (penalty), computed outside forward"
    for m in model.modules():
        if isinstance(m, nn.Dropout) and m.p > 0:
            return "dropout draws different random masks per call"
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return "batch norm updates running statistics in place"
    return None


def run_seed_batch(
    experiments: list[Experiment], device: str, parent_run_id: str
) -> list[Outcome]:
    """Train the seeds together; one Outcome (and one MLflow child run) per experiment."""
    why = spec_vectorizable(experiments[0])
    if why:
        print(f"vectorize: {why}; running the seeds one after another", file=sys.stderr)
        task = Task(experiments, parent_run_id, device)
        return [run_one(e, task) for e in experiments]
    batch = SeedBatch(len(experiments))
    outcomes: list[Outcome | None] = [None] * len(experiments)

    def member(i: int) -> None:
        batch.begin_setup(i)
        try:
            outcomes[i] = run_one(experiments[i], Task([], parent_run_id, device), batch.member(i))
        finally:
            batch.end_setup(i)
            batch.leave(i)  # a member that failed before training must not hold the batch up

    threads = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(batch.n)]
    for t in threads:
        t.start()
    try:
        batch.coordinate()
    except KeyboardInterrupt:
        batch.abort(KeyboardInterrupt())
        for t in threads:
            t.join()
        raise
    for t in threads:
        t.join()
    return [o for o in outcomes if o is not None]


class _Member:
    """The runner one seed's run_experiment calls: it parks the context with the batch."""

    def __init__(self, batch: SeedBatch, i: int) -> None:
        self.batch, self.i = batch, i

    def run(self, ctx: RunContext) -> None:
        self.batch.end_setup(self.i)  # the run exists: the next seed may create its own
        self.batch.join(self.i, ctx)
        self.batch.done[self.i].wait()
        # run_experiment now writes this seed's artifacts: matplotlib is not thread-safe (and
        # see `setup`), so the seeds' runs finish one at a time (released in SeedBatch.leave).
        self.batch.finishing.acquire()
        self.batch.holding[self.i] = True
        if self.batch.errors[self.i] is not None:
            raise self.batch.errors[self.i]


class SeedBatch:
    """Collects the seeds' contexts, then trains them in one loop (in the caller's thread)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.ctxs: list[RunContext | None] = [None] * n
        self.left = [False] * n
        self.errors: list[BaseException | None] = [None] * n
        self.done = [threading.Event() for _ in range(n)]
        self.cond = threading.Condition()
        # One seed at a time creates its MLflow run, and one at a time finishes it: 16 runs
        # opening at once exhaust the SQLite store's connection pool (QueuePool timeout).
        self.setup = threading.Lock()
        self.in_setup = [False] * n
        self.finishing = threading.Lock()
        self.holding = [False] * n

    def member(self, i: int) -> _Member:
        return _Member(self, i)

    def begin_setup(self, i: int) -> None:
        self.setup.acquire()
        self.in_setup[i] = True

    def end_setup(self, i: int) -> None:
        if self.in_setup[i]:
            self.in_setup[i] = False
            self.setup.release()

    def join(self, i: int, ctx: RunContext) -> None:
        with self.cond:
            self.ctxs[i] = ctx
            self.cond.notify_all()

    def leave(self, i: int) -> None:
        if self.holding[i]:
            self.holding[i] = False
            self.finishing.release()
        with self.cond:
            self.left[i] = True
            self.cond.notify_all()

    def finish(self, i: int, error: BaseException | None = None) -> None:
        self.errors[i] = error
        self.done[i].set()

    def abort(self, error: BaseException) -> None:
        for i in range(self.n):
            if not self.done[i].is_set():
                self.finish(i, error)

    def coordinate(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: all(
                c is not None or gone for c, gone in zip(self.ctxs, self.left, strict=True)
            ))
        members = [
            i for i, c in enumerate(self.ctxs) if c is not None and not self.done[i].is_set()
        ]
        if not members:
            return
        try:
            self._train(members)
        except Exception as exc:  # noqa: BLE001 - reported by each seed's own run
            self.abort(exc)

    def _train(self, members: list[int]) -> None:
        ctxs = [self.ctxs[i] for i in members]
        assert all(c is not None for c in ctxs)
        ctx0 = ctxs[0]
        exp0, dev = ctx0.experiment, ctx0.device
        train = exp0.train
        models = []
        for c in ctxs:
            torch.manual_seed(c.experiment.seed)
            models.append(c.experiment.learner.build(c.dataset).to(dev))
        why = model_vectorizable(models[0])
        if why:  # the spec allowed it but the built model does not: run them one by one
            print(f"vectorize: {why}; running the seeds one after another", file=sys.stderr)
            from grokspec.runners.gradient import GradientRunner

            for i, c in zip(members, ctxs, strict=True):
                try:
                    GradientRunner().run(c)
                    self.finish(i)
                except Exception as exc:  # noqa: BLE001 - this seed's run reports it
                    self.finish(i, exc)
            return
        _BatchLoop(self, members, ctxs, models, train, dev).run()


class _BatchLoop:
    """The vmapped training loop; mirrors runners/gradient.py step for step."""

    def __init__(
        self,
        batch: SeedBatch,
        members: list[int],
        ctxs: list[Any],
        models: list[nn.Module],
        train: Any,
        dev: torch.device,
    ) -> None:
        self.batch, self.members, self.ctxs, self.models = batch, members, ctxs, models
        self.train, self.dev = train, dev
        self.params, self.buffers = stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta")
        data0 = ctxs[0].dataset

        def one(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return loss_fn(functional_call(base, (p, b), (x,)), y, data0, train)

        self.losses = vmap(one)
        self.tensors = [
            {k: getattr(c.dataset, k).to(dev) for k in ("x_train", "y_train", "x_test", "y_test")}
            for c in ctxs
        ]
        self.active = [True] * len(ctxs)

    def _finish(self, j: int, error: BaseException | None = None) -> None:
        if self.active[j]:
            self.active[j] = False
            self.ctxs[j].artifacts["model"] = self.models[j]
            self.batch.finish(self.members[j], error)

    def _evaluate(self, step: int) -> None:
        for j, (c, model) in enumerate(zip(self.ctxs, self.models, strict=True)):
            if not self.active[j]:
                continue
            with torch.no_grad():
                for name, p in model.named_parameters():
                    p.copy_(self.params[name][j])
                for name, b in model.named_buffers():
                    b.copy_(self.buffers[name][j])
            try:
                metrics = standard_metrics(model, c.dataset, self.train, self.tensors[j])
                if c.on_eval(step, metrics, model):
                    self._finish(j)
            except Diverged as exc:
                self._finish(j, exc)

    def run(self) -> None:
        train, dev, ctxs = self.train, self.dev, self.ctxs
        opt, sched = build_optimizer(list(self.params.values()), train.optimizer)
        x_all = torch.stack([t["x_train"] for t in self.tensors])
        y_all = torch.stack([t["y_train"] for t in self.tensors])
        rows = torch.arange(len(ctxs), device=dev)[:, None]
        gens = [torch.Generator().manual_seed(c.experiment.seed) for c in ctxs]
        streams = [
            batches(c.dataset.n_train, train.batch_size, g, dev)
            for c, g in zip(ctxs, gens, strict=True)
        ]
        check_every_step = dev.type == "cpu"
        self._evaluate(0)
        for step in range(1, train.steps + 1):
            if not any(self.active):
                break
            idx = [next(s) for s in streams]
            if idx[0] is None:
                xb, yb = x_all, y_all
            else:
                index = torch.stack(idx)
                xb, yb = x_all[rows, index], y_all[rows, index]
            losses = self.losses(self.params, self.buffers, xb, yb)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            sched.step()
            if check_every_step:
                for j, value in enumerate(losses.tolist()):
                    if self.active[j]:
                        try:
                            ctxs[j].check_loss(step, value)
                        except Diverged as exc:
                            self._finish(j, exc)
            if step % train.eval_every == 0 or step == train.steps:
                self._evaluate(step)
        for j in range(len(ctxs)):
            self._finish(j)
