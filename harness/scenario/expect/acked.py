"""`acked_within = "1s"`: every command sent (only those named `command`, if given) was
acknowledged within this time after its step issued it. A step's own `ack_within` makes one of
these for that step's command alone (harness.scenario.load)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.link.commands import COMMANDS
from harness.scenario.expect.base import Context, Evaluator, Kind, RunFacts, register
from harness.scenario.model import Expect
from harness.scenario.reader import Path_, suggest
from harness.scenario.units import format_duration


@dataclass(frozen=True, slots=True)
class AckExpect:
    within: float
    command: str | None = None
    step: int | None = None
    """Only the command of this [[step]] number (from a step's ack_within)."""

    def describe(self) -> str:
        if self.step is not None:
            return (
                f"step[{self.step}] {self.command} acknowledged within "
                f"{format_duration(self.within)}"
            )
        what = self.command or "every command"
        return f"{what} acknowledged within {format_duration(self.within)}"


def parse(cx: Context, t: dict[str, Any], path: Path_) -> AckExpect:
    r = cx.reader
    within = r.duration(t["acked_within"], (*path, "acked_within"))
    command = None
    if "command" in t:
        command = r.string(t["command"], (*path, "command"))
        if command not in COMMANDS:
            raise r.fail(
                (*path, "command"), f'unknown command "{command}"{suggest(command, COMMANDS)}'
            )
    return AckExpect(within, command)


class AckEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: AckExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.worst = 0.0
        self.count = 0
        self.failed = 0

    def on_command(self, handle: int, name: str, step: int | None, latency: float | None) -> None:
        c = self.check
        if (c.command and name != c.command) or (c.step is not None and step != c.step):
            return
        self.count += 1
        if latency is None:
            self.failed += 1
            self._resolve(False, None, f"{name} failed")
            return
        self.worst = max(self.worst, latency)
        if latency > c.within:
            self._resolve(False, round(latency, 4), f"{name} took {format_duration(latency)}")

    def unreached(self, facts: RunFacts) -> str | None:
        """A stopped run before any such command finished (its step may not have run)."""
        if facts.stopped_at is None or self.count:
            return None
        return f"the run stopped at {facts.stopped_at:.1f} s, before any such command finished"

    def finish(self, facts: RunFacts) -> None:
        if self.count == 0:
            self._resolve(False, None, "no such command finished")
        self._resolve(
            True, round(self.worst, 4), f"slowest {self.worst * 1000:.0f} ms of {self.count}"
        )


register(
    Kind(
        key="acked_within",
        order=30,
        takes=("command",),
        check=AckExpect,
        parse=parse,
        evaluator=AckEvaluator,
    )
)
