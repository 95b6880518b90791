"""A module imported on first use, so spec validation and the CLI start without torch.

The dataset families define their spec classes (pydantic, needed to validate a file) next
to the code that builds their tensors (torch, needed only to run). Importing torch costs
~1.3 s of CPU, several times the rest of ``grokspec validate``; with

    if TYPE_CHECKING:
        import torch
    else:
        torch = lazy_module("torch")

at the top of such a module, torch is imported the first time a builder touches
``torch.<anything>``, and type checkers still see the real module.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stands for module ``name``; the first attribute access imports it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_lazy_target"] = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__dict__["_lazy_target"])
        value = getattr(module, attr)
        self.__dict__[attr] = value  # later look-ups skip __getattr__
        return value


def lazy_module(name: str) -> Any:
    """``name``, imported when first used (see the module docstring)."""
    return LazyModule(name)
