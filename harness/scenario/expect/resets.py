"""`resets = 1`: the host saw exactly this many device resets by the end of the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.scenario.expect.base import Context, Evaluator, Kind, RunFacts, register
from harness.scenario.model import Expect
from harness.scenario.reader import Path_


@dataclass(frozen=True, slots=True)
class ResetsExpect:
    count: int

    def describe(self) -> str:
        return f"device resets seen = {self.count}"


def parse(cx: Context, t: dict[str, Any], path: Path_) -> ResetsExpect:
    return ResetsExpect(cx.reader.integer(t["resets"], (*path, "resets"), 0, 10**6))


class ResetsEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: ResetsExpect) -> None:
        super().__init__(expect)
        self.check = check

    def unreached(self, facts: RunFacts) -> str | None:
        """A count is of the whole run: a stopped run judges it only once it is already over."""
        if facts.stopped_at is None or facts.resets > self.check.count:
            return None
        return f"the run stopped at {facts.stopped_at:.1f} s, before its end ({facts.resets} seen)"

    def finish(self, facts: RunFacts) -> None:
        resets = facts.resets
        self._resolve(resets == self.check.count, resets, f"{resets} seen")


register(
    Kind(
        key="resets",
        order=50,
        takes=(),
        check=ResetsExpect,
        parse=parse,
        evaluator=ResetsEvaluator,
    )
)
