"""The base class every spec model inherits.

It lives in its own module so that dataset and learner modules can define their spec
classes next to their builders without importing :mod:`grokspec.spec` (which imports them).
"""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A spec section: unknown keys are errors (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
