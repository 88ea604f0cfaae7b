"""`time_below = "4.5 V"` with `at_most = "2s"` (and/or `at_least`): how long the rail spent
below a level in the window (harness.scenario.expect.dwell says how it is measured)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.scenario.expect.base import Kind, register
from harness.scenario.expect.dwell import TAKES, DwellEvaluator, DwellExpect, parser


@dataclass(frozen=True, slots=True)
class TimeBelowExpect(DwellExpect):
    """The check of `time_below`."""


register(
    Kind(
        key="time_below",
        order=22,
        takes=TAKES,
        check=TimeBelowExpect,
        parse=parser("time_below", TimeBelowExpect),
        evaluator=DwellEvaluator,
    )
)
