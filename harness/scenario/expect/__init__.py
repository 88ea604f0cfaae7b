"""Expectation kinds, one module each in this package.

Importing the package imports every module in it (`discover`); a kind module registers its
kind with `base.register` as it is imported, so a new kind is one new module and nothing else
names it. Everything else here is the registry's and the evaluators' shared interface.
"""

from __future__ import annotations

import importlib
import pkgutil

from harness.scenario.expect.base import (
    FAIL,
    PASS,
    PENDING,
    SKIPPED,
    Context,
    Evaluator,
    Kind,
    Outcome,
    RunFacts,
    entry_keys,
    evaluator,
    kinds,
    register,
    unregister,
)

__all__ = [
    "FAIL",
    "PASS",
    "PENDING",
    "SKIPPED",
    "Context",
    "Evaluator",
    "Kind",
    "Outcome",
    "RunFacts",
    "discover",
    "entry_keys",
    "evaluator",
    "kinds",
    "register",
    "unregister",
]


def discover() -> None:
    """Import every module of the package (those already imported stay as they are)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


discover()
