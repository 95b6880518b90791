"""Learners. Each ``<name>.py`` defines a spec class (``kind: <name>``) that builds the model.
To add a learner, add its module and list its spec class in ``LearnerSpec`` below.
"""

from typing import Annotated, Union

from pydantic import Field

from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.bayesian_mlp import BayesianMLPSpec
from grokspec.learners.gp import GPSpec
from grokspec.learners.linear import LinearSpec
from grokspec.learners.mlp import MLPSpec
from grokspec.learners.moe_transformer import MoETransformerSpec
from grokspec.learners.transformer import TransformerSpec

LearnerSpec = Annotated[
    Union[TransformerSpec, MLPSpec, GPSpec, LinearSpec, BayesianMLPSpec, MoETransformerSpec],  # noqa: UP007 - later learners extend this union
    Field(discriminator="kind", description="What is trained; `kind` picks the learner."),
]

__all__ = [
    "BayesianMLPSpec",
    "GPSpec",
    "LearnerSpec",
    "LearnerSpecBase",
    "LinearSpec",
    "MLPSpec",
    "MoETransformerSpec",
    "TransformerSpec",
]
