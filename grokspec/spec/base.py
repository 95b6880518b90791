"""The base class every spec model inherits.

It lives in its own module so that dataset and learner modules can define their spec
classes next to their builders without importing
:mod:`grokspec.spec.experiment` (which imports them).
"""

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


class StrictModel(BaseModel):
    """A spec section: unknown keys are errors (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def field_error(field: str, message: str) -> PydanticCustomError:
    """An error, raised from a model-level validator, that the loader reports at ``field``.

    A check that needs several fields (``train_size`` against the pool size, ``k`` against
    ``n_bits``) runs after the whole section is parsed, so pydantic would blame the section;
    naming the field makes ``grokspec validate`` point at the line the user must change.
    ``field`` is dotted, relative to the model (``"spurious_dims.distribution"``).
    """
    return PydanticCustomError("value_error", message, {"field": field})
