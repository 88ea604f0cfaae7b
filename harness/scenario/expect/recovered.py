"""`recovered_within = "4s"`, `after` = a fault step's name: once that step's faults end (an
outage's end, or the next `link` step), the link caught up within this time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.scenario.expect.base import Context, Evaluator, Kind, RunFacts, register
from harness.scenario.model import Expect, Outage, SetLink
from harness.scenario.reader import Path_, suggest
from harness.scenario.units import format_duration


@dataclass(frozen=True, slots=True)
class RecoveryExpect:
    after: str
    """Name of the step whose fault burst it measures from."""
    within: float

    def describe(self) -> str:
        return f"recovered within {format_duration(self.within)} after {self.after}"


def parse(cx: Context, t: dict[str, Any], path: Path_) -> RecoveryExpect:
    r = cx.reader
    within = r.duration(t["recovered_within"], (*path, "recovered_within"))
    if "after" not in t:
        raise r.fail(path, 'missing "after" (the name of the step whose faults it recovers from)')
    after = r.string(t["after"], (*path, "after"))
    bursts = [
        s
        for s in cx.steps
        if isinstance(s.action, SetLink) or (isinstance(s.action, Outage) and not s.action.stop)
    ]
    faulty = {s.name for s in bursts}
    if len({s.number for s in bursts if s.name == after}) > 1:
        raise r.fail(
            (*path, "after"),
            f'several fault steps are named "{after}": give the one you mean a name = "..."',
        )
    if after not in faulty:
        names = sorted(faulty) or ["(no step changes link faults or starts an outage)"]
        raise r.fail(
            (*path, "after"),
            f'no fault step named "{after}"{suggest(after, faulty)}; '
            f"fault steps: {', '.join(names)}",
        )
    return RecoveryExpect(after, within)


class RecoveryEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: RecoveryExpect) -> None:
        super().__init__(expect)
        self.check = check

    def unreached(self, facts: RunFacts) -> str | None:
        end = facts.fault_ends.get(self.check.after)
        if facts.stopped_at is not None and end is not None and end > facts.stopped_at:
            return f"the run stopped at {facts.stopped_at:.1f} s, before {self.check.after} ended"
        return None

    def finish(self, facts: RunFacts) -> None:
        took = facts.recovery.get(self.check.after)
        if took is None:
            self._resolve(False, None, "did not recover before the run ended")
        else:
            ok = took <= self.check.within
            self._resolve(ok, round(took, 3), f"{took:.2f} s")


register(
    Kind(
        key="recovered_within",
        order=60,
        takes=("after",),
        check=RecoveryExpect,
        parse=parse,
        evaluator=RecoveryEvaluator,
    )
)
