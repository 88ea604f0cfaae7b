"""`time_above = "4.5 V"` with `at_most = "2s"` (and/or `at_least`): how long the rail spent
above a level in the window (harness.scenario.expect.dwell says how it is measured)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.scenario.expect.base import Kind, register
from harness.scenario.expect.dwell import TAKES, DwellEvaluator, DwellExpect, parser


@dataclass(frozen=True, slots=True)
class TimeAboveExpect(DwellExpect):
    """The check of `time_above`."""


register(
    Kind(
        key="time_above",
        order=23,
        takes=TAKES,
        check=TimeAboveExpect,
        parse=parser("time_above", TimeAboveExpect),
        evaluator=DwellEvaluator,
    )
)
