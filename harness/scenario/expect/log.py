"""`log = "calibration (\\d+)"`: a device log line (a `#` line) in which the regular expression
is found arrives in the window (`within`, or `from`/`to`; default the whole run), or, with
`absent = true`, none does. With limits (`value = 4096`, or `below`/`above`/`between` with
units, and `marginal`), the first matching line's capture (its first group, else the whole
match) is read as a number or a value with a unit and judged. Lines are matched whole, as the
link delivers them, at the time they arrive.

A `[[step]]` with `wait_log` adds one of these: the line must arrive within its `timeout` of
the step."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.link import Sample
from harness.scenario import quantities
from harness.scenario.anchors import Anchor, Fixed, Span
from harness.scenario.expect.base import (
    Context,
    Evaluator,
    Kind,
    RunFacts,
    Window,
    overlaps,
    past,
    register,
    window_text,
)
from harness.scenario.expect.limits import LIMIT_KEYS, Limits, dimension_written, read_limits
from harness.scenario.model import Expect, Step, WaitLog
from harness.scenario.quantities import NUMBER
from harness.scenario.reader import Path_, Reader
from harness.scenario.units import format_duration

LIMITS = ("value", "below", "above", "between")


@dataclass(frozen=True, slots=True)
class LogExpect:
    pattern: re.Pattern[str]
    window: Window | Span | None
    absent: bool = False
    limits: Limits | None = None

    def describe(self) -> str:
        what = f"log line /{self.pattern.pattern}/"
        if self.absent:
            return f"no {what} ({window_text(self.window)})"
        judged = f", capture {self.limits.describe()}" if self.limits is not None else ""
        return f"{what} within {window_text(self.window)}{judged}"


def regex(r: Reader, value: Any, path: Path_) -> re.Pattern[str]:
    """A regular expression, to be searched in each whole log line."""
    text = r.string(value, path)
    try:
        return re.compile(text)
    except re.error as exc:
        raise r.fail(path, f'"{text}" is not a regular expression: {exc}') from None


def waited_for(step: Step, number: int, duration: float) -> Expect:
    """The expectation a `wait_log` step adds: its line arrives within its timeout."""
    action = step.action
    assert isinstance(action, WaitLog)
    n = step.number
    lo = Anchor("step", n, 0.0, f"step[{n}]")
    hi = Anchor("step", n, action.timeout, f"step[{n}] + {format_duration(action.timeout)}")
    window: Fixed | Span
    if step.after_wait:
        window = Span(lo, hi, (None, None))
    else:
        window = Fixed(step.at, min(step.at + action.timeout, duration), f"{lo.text}..{hi.text}")
    name = (
        f"{step.label}: log line /{action.pattern.pattern}/ within "
        f"{format_duration(action.timeout)}"
    )
    return Expect(number, LogExpect(action.pattern, window), name)


def parse(cx: Context, t: dict[str, Any], path: Path_) -> LogExpect:
    r = cx.reader
    pattern = regex(r, t["log"], (*path, "log"))
    window = cx.window(t, path, "within")
    absent = r.boolean(t.get("absent", False), (*path, "absent"))
    limits = None
    if any(k in t for k in LIMITS):
        if absent:
            raise r.fail((*path, "absent"), "an absent line has no capture to judge")
        dim = dimension_written(t, (*LIMIT_KEYS, "marginal")) or NUMBER
        limits = read_limits(r, t, path, dim, "the capture", LIMITS)
    elif "marginal" in t:
        raise r.fail(
            (*path, "marginal"), 'needs a bound to be inside of ("below", "above", "between")'
        )
    return LogExpect(pattern, window, absent, limits)


class LogEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: LogExpect) -> None:
        super().__init__(expect)
        self.check = check

    def on_event(self, kind: str, at: float, data: Mapping[str, Any]) -> None:
        c = self.check
        if past(at, c.window):
            self._settle()
            return
        if kind != "log" or not overlaps(at, at, c.window):
            return
        text = str(data.get("text", ""))
        m = c.pattern.search(text)
        if m is None:
            return
        shown = f'"{text}" at {at:.2f} s'
        if c.absent:
            self._resolve(False, round(at, 3), shown)
        elif c.limits is None:
            self._resolve(True, round(at, 3), shown)
        else:
            self._judge(m, shown)

    def _judge(self, m: re.Match[str], shown: str) -> None:
        limits = self.check.limits
        assert limits is not None
        capture = m.group(1) if m.groups() else m.group(0)
        try:
            x, dim = quantities.parse(capture)
        except ValueError:
            self._resolve(False, capture, f'the capture "{capture}" is not a number ({shown})')
            return
        if dim is not None and dim is not limits.dim:
            self._resolve(
                False,
                capture,
                f'the capture "{capture}" is {dim.name}, the limits are {limits.dim.units}',
            )
            return
        self._settle_as(limits.judge(x), x, f"{limits.show(x)} in {shown}")

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        if past(start, self.check.window):
            self._settle()

    def _settle(self) -> None:
        if self.resolved:
            return
        if self.check.absent:
            self._resolve(True, None, "none")
        else:
            self._resolve(
                False, None, f"no line matching /{self.check.pattern.pattern}/ in the window"
            )

    def finish(self, facts: RunFacts) -> None:
        self._settle()


register(
    Kind(
        key="log",
        order=15,
        takes=("within", "from", "to", "absent", *LIMITS, "marginal"),
        check=LogExpect,
        parse=parse,
        evaluator=LogEvaluator,
    )
)
