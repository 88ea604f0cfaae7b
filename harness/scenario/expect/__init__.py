"""Expectation kinds, one module each in this package.

Listing the kinds (`kinds`, `entry_keys`: what reading a scenario does) first imports every
module in the package (`discover`); a kind module registers its kind with `base.register` as it
is imported, so a new kind is one new module and nothing else names it. Everything else here is the registry's and the evaluators' shared interface.
"""

from __future__ import annotations

from harness.scenario.expect.base import (
    FAIL,
    MARGINAL,
    PASS,
    PENDING,
    SKIPPED,
    STATES,
    Context,
    Evaluator,
    Kind,
    Outcome,
    RunFacts,
    discover,
    entry_keys,
    evaluator,
    kinds,
    register,
    unregister,
)

__all__ = [
    "FAIL",
    "MARGINAL",
    "PASS",
    "PENDING",
    "SKIPPED",
    "STATES",
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
