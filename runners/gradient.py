"""Gradient runner: a torch optimizer over a torch model (transformer, MLP, ...).

The whole loop is below, top to bottom: nothing else in grokspec touches the model between
evaluations. Metrics go to ``ctx.on_eval``, which logs them (batched), checks for NaN and
decides about early stopping.
"""

from __future__ import annotations

import torch

from grokspec.training.checkpoint import Checkpointer
from grokspec.training.evaluation import batches, build_optimizer, loss_fn, standard_metrics
from grokspec.training.grokfast import GradFilter
from grokspec.training.runner import RunContext


class GradientRunner:
    def run(self, ctx: RunContext) -> None:
        exp, data, dev = ctx.experiment, ctx.dataset, ctx.device
        torch.manual_seed(exp.seed)
        model = exp.learner.build(data).to(dev)
        opt, sched = build_optimizer(list(model.parameters()), exp.train.optimizer)
        t = {k: getattr(data, k).to(dev) for k in ("x_train", "y_train", "x_test", "y_test")}
        gen = torch.Generator().manual_seed(exp.seed)
        check_every_step = dev.type == "cpu"  # a NaN check costs a device sync on GPU
        # A model's own extra loss term, computed after its forward pass: the Bayesian net's
        # KL (ELBO), the mixture of experts' load-balancing loss.
        penalty = getattr(model, "penalty", None)

        grokfast = GradFilter(exp.train.grokfast, list(model.parameters()))  # no-op if unset
        ckpt = Checkpointer(ctx, model, opt, sched)  # tracking.checkpoint_every, --resume
        start = ckpt.restore()
        if start == 0:
            ctx.on_eval(0, standard_metrics(model, data, exp.train, t), model)
        for step, idx in zip(range(start + 1, exp.train.steps + 1), ckpt.skip(batches(
            data.n_train, exp.train.batch_size, gen, dev
        ), start), strict=False):
            xb, yb = (t["x_train"], t["y_train"]) if idx is None else (
                t["x_train"][idx], t["y_train"][idx])
            loss = loss_fn(model(xb), yb, data, exp.train)
            if penalty is not None:
                loss = loss + penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grokfast()
            opt.step()
            sched.step()
            if check_every_step:
                ctx.check_loss(step, loss.item())
            if step % exp.train.eval_every == 0 or step == exp.train.steps:
                if ctx.on_eval(step, standard_metrics(model, data, exp.train, t), model):
                    break
                ckpt.after_eval(step)
        ckpt.finish()
        ctx.artifacts["model"] = model
