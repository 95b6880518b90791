"""Gaussian-process runner: gradient steps on a GP's marginal likelihood or ELBO (gpytorch).

One step is one optimizer update of the GP's hyperparameters (kernel, mean, noise) and, for
the variational classifier, its variational parameters. Evaluation goes through the same
:func:`grokspec.training.evaluation.standard_metrics` as a network: the model's forward returns the
posterior predictive (see :mod:`grokspec.learners.gp` for what loss and weight norm mean for
a GP), and its ``extra_metrics()`` adds ``gp/*`` (lengthscales, outputscale, noise, objective).
"""

from __future__ import annotations

import torch

from grokspec.learners.gp import GaussianProcess, GPSpec
from grokspec.training.checkpoint import Checkpointer
from grokspec.training.evaluation import batches, build_optimizer, standard_metrics
from grokspec.training.runner import RunContext


class GaussianProcessRunner:
    def run(self, ctx: RunContext) -> None:
        exp, data, dev = ctx.experiment, ctx.dataset, ctx.device
        spec = exp.learner
        if not isinstance(spec, GPSpec):
            raise TypeError(f"the gaussian_process runner trains kind: gp, not '{spec.kind}'")
        spec.check_memory(data, exp.train.batch_size)
        torch.manual_seed(exp.seed)
        model: GaussianProcess = spec.build(data).to(dev)
        opt, sched = build_optimizer(list(model.parameters()), exp.train.optimizer)
        t = {k: getattr(data, k).to(dev) for k in ("x_train", "y_train", "x_test", "y_test")}
        gen = torch.Generator().manual_seed(exp.seed)

        ckpt = Checkpointer(ctx, model, opt, sched)  # tracking.checkpoint_every, --resume
        start = ckpt.restore()
        if start == 0:
            ctx.on_eval(0, standard_metrics(model, data, exp.train, t), model)
        steps = range(start + 1, exp.train.steps + 1)
        batch_idx = ckpt.skip(batches(data.n_train, exp.train.batch_size, gen, dev), start)
        for step, idx in zip(steps, batch_idx, strict=False):
            loss = model.objective(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ctx.check_loss(step, loss.item())  # one sync per step: cheap next to a Cholesky
            if step % exp.train.eval_every == 0 or step == exp.train.steps:
                if ctx.on_eval(step, standard_metrics(model, data, exp.train, t), model):
                    break
                ckpt.after_eval(step)
        ckpt.finish()
        ctx.artifacts["model"] = model
