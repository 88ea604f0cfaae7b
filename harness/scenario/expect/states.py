"""The states an expectation is in."""

from __future__ import annotations

PENDING, PASS, MARGINAL, FAIL, SKIPPED = "pending", "pass", "marginal", "fail", "skipped"
"""MARGINAL: within its limits, but by less than its `marginal` band (a run with one fails only
under --strict). SKIPPED: the run was stopped before the expectation's window (or the faults it
judges) ended, so it could not be judged."""
STATES = (PASS, MARGINAL, FAIL, SKIPPED, PENDING)
