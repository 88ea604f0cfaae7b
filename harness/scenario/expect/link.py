"""`link = { lost = 0, ... }`: each named link total is at most its limit when the run ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.scenario.expect.base import Context, Evaluator, Kind, RunFacts, register
from harness.scenario.model import Expect
from harness.scenario.reader import Path_

LINK_TOTALS = (
    "lost",
    "duplicated",
    "commands_failed",
    "commands_executed_twice",
    "retransmissions",
    "corrupt",
    "gaps",
    "lost_to_resets",
)
"""Link totals an expectation may bound (names as in the run record)."""


@dataclass(frozen=True, slots=True)
class LinkExpect:
    limits: dict[str, int]
    """Link totals and their upper bounds."""

    def describe(self) -> str:
        return "link: " + ", ".join(f"{k} <= {v}" for k, v in self.limits.items())


def parse(cx: Context, t: dict[str, Any], path: Path_) -> LinkExpect:
    r = cx.reader
    kp = (*path, "link")
    limits = r.table(t["link"], kp, LINK_TOTALS)
    return LinkExpect({k: r.integer(v, (*kp, k), 0, 10**9) for k, v in limits.items()})


class LinkEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: LinkExpect) -> None:
        super().__init__(expect)
        self.check = check

    def finish(self, facts: RunFacts) -> None:
        totals = facts.totals
        over = {k: totals[k] for k, limit in self.check.limits.items() if totals[k] > limit}
        shown = ", ".join(f"{k} {totals[k]}" for k in self.check.limits)
        self._resolve(not over, shown, shown)


register(
    Kind(
        key="link",
        order=40,
        takes=(),
        check=LinkExpect,
        parse=parse,
        evaluator=LinkEvaluator,
    )
)
