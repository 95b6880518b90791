"""Dataset families. Each ``<name>.py`` defines a spec class (``kind: <name>``) that builds
a :class:`~grokspec.datasets.base.Dataset`. To add a family, add its module and list its
spec class in ``DatasetSpec`` below.
"""

from typing import Annotated, Union

from pydantic import Field

from grokspec.datasets.base import Dataset, DatasetSpecBase, Pool
from grokspec.datasets.modular import ModularSpec

DatasetSpec = Annotated[
    Union[ModularSpec],  # noqa: UP007 - a union that later families extend
    Field(discriminator="kind", description="How the dataset is built; `kind` picks the family."),
]

__all__ = ["Dataset", "DatasetSpec", "DatasetSpecBase", "ModularSpec", "Pool"]
