"""``progress/param_movement`` = ||theta_t - theta_0|| / ||theta_0|| (Kumar et al. 2024: small
while training is lazy)."""

from __future__ import annotations

from typing import Any

from grokspec.learners.contract import PARAMETERS, require
from grokspec.metrics import names
from grokspec.metrics.registry import MeasureDef, register


def initial_parameters(experiment: Any, dataset: Any) -> list[Any] | None:
    """theta_0 rebuilt from the seed, for a run resumed from a checkpoint (whose first
    evaluation is not step 0). The gradient runner seeds torch with the experiment seed and
    builds the model; this repeats that inside a forked RNG, so training is not disturbed."""
    import torch

    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(experiment.seed)
            model = experiment.learner.build(dataset)
        return [p.detach().clone() for p in model.parameters()]
    except Exception:  # noqa: BLE001 - a learner we cannot rebuild: no movement metric
        return None


class ParamMovement:
    """theta_0 = the parameters at step 0 (rebuilt from the seed after a resume)."""

    def __init__(self, experiment: Any, dataset: Any) -> None:
        self.experiment, self.dataset = experiment, dataset
        self.theta0: list[Any] | None = None

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        from grokspec.metrics.laziness import param_movement

        require(model, {PARAMETERS}, "param_movement")
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


MEASURE = register(MeasureDef(
    name="param_movement", order=40, needs=frozenset({PARAMETERS}),
    build=lambda ctx: ParamMovement(ctx.experiment, ctx.dataset),
    doc="||theta_t - theta_0|| / ||theta_0||, `progress/param_movement` (Kumar et al. 2024: "
    "small while training is lazy).",
))
