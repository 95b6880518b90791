"""The registered paper claims, by spec file stem (report order)."""

from __future__ import annotations

from importlib import import_module

from grokspec.papers.claim import Claim

#: Report order: the paper spec stems, each a module of this package with a ``CLAIM``.
PAPERS: tuple[str, ...] = (
    "lee2024", "power2022", "carvalho2025", "miller2023", "kumar2024", "liu2022",
    "huang2024", "fan2024", "nanda2023", "li2025",
)


def claims() -> dict[str, Claim]:
    """Every registered claim (imports the paper modules)."""
    return {p: import_module(f"grokspec.papers.{p}").CLAIM for p in PAPERS}


def claim(name: str) -> Claim:
    """One claim by paper name; an unknown name is a ``KeyError`` listing the valid ones."""
    if name not in PAPERS:
        raise KeyError(f"unknown claim rule '{name}' (valid: {', '.join(PAPERS)})")
    return import_module(f"grokspec.papers.{name}").CLAIM
