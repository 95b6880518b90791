"""Dataset families. Each ``<name>.py`` defines a spec class (``kind: <name>``) that builds
a :class:`~grokspec.datasets.base.Dataset`. To add a family, add its module and list its
spec class in ``DatasetSpec`` below.
"""

from typing import Annotated, Union

from pydantic import Field

from grokspec.datasets.addition import AdditionSpec
from grokspec.datasets.base import Dataset, DatasetSpecBase, Pool
from grokspec.datasets.digits import DigitsSpec
from grokspec.datasets.linear_teacher import LinearTeacherSpec
from grokspec.datasets.modular import ModularSpec
from grokspec.datasets.parity import ParitySpec
from grokspec.datasets.permutation import PermutationSpec
from grokspec.datasets.regression_sine import RegressionSineSpec
from grokspec.datasets.subclass import SubclassSpec
from grokspec.datasets.teacher import TeacherSpec

DatasetSpec = Annotated[
    Union[  # noqa: UP007 - a union that later families extend
        ModularSpec,
        PermutationSpec,
        SubclassSpec,
        ParitySpec,
        TeacherSpec,
        LinearTeacherSpec,
        DigitsSpec,
        RegressionSineSpec,
        AdditionSpec,
    ],
    Field(discriminator="kind", description="How the dataset is built; `kind` picks the family."),
]

__all__ = [
    "AdditionSpec",
    "Dataset",
    "DatasetSpec",
    "DatasetSpecBase",
    "DigitsSpec",
    "LinearTeacherSpec",
    "ModularSpec",
    "ParitySpec",
    "PermutationSpec",
    "Pool",
    "RegressionSineSpec",
    "SubclassSpec",
    "TeacherSpec",
]
