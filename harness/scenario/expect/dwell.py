"""What `time_below = "4.5 V"` and `time_above = "300 mA"` (each its own kind module) share: how long the rail spent below (above)
a level in the window (`over`, default the whole run), against `at_most` and/or `at_least`
(durations), e.g. how long a sag lasted. The level's unit says what is measured: V the voltage,
A the current, W the power.

Per sample, the part of its time inside the window counts whole when the sample lies wholly
beyond the level and not at all when wholly short of it. For the voltage, whose samples carry
their minimum, maximum and mean, a sample that straddles the level counts the fraction a linear
ramp from its minimum to its maximum would spend beyond it, kept within the bounds its mean
allows (a short dip under a high mean is a short time); the verdict table shows those bounds
summed beside the estimate. Current and power samples carry no minimum: one counts when its mean
is beyond the level. Time no sample covers is reported, never counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from harness.link import Sample
from harness.scenario import quantities
from harness.scenario.anchors import Span
from harness.scenario.expect.base import (
    UNCOVERED_SHOWN,
    Context,
    Evaluator,
    NewSamples,
    RunFacts,
    Window,
    past,
    window_text,
)
from harness.scenario.expect.limits import Limits, read_limits
from harness.scenario.model import Expect
from harness.scenario.quantities import CURRENT, POWER, TIME, VOLTAGE, Dimension, format_value
from harness.scenario.reader import Path_, show

MEASURE_OF = {VOLTAGE: "v", CURRENT: "a", POWER: "w"}
LIMITS = ("at_most", "at_least")
TAKES = ("over", "from", "to", *LIMITS, "marginal")


@dataclass(frozen=True, slots=True)
class DwellExpect:
    below: bool
    """time_below (True) or time_above (False)."""
    dim: Dimension
    """The level's: VOLTAGE, CURRENT or POWER."""
    level: float
    window: Window | Span
    limits: Limits

    @property
    def measure(self) -> str:
        """v, a or w."""
        return MEASURE_OF[self.dim]

    def describe(self) -> str:
        side = "below" if self.below else "above"
        level = format_value(self.level, self.dim)
        return f"time {side} {level} over {window_text(self.window)} {self.limits.describe()}"


D = TypeVar("D", bound=DwellExpect)


def parser(key: str, check: type[D]) -> Any:
    """The parser of the kind `key` (time_below or time_above), giving a `check`."""

    def parse(cx: Context, t: dict[str, Any], path: Path_) -> D:
        r = cx.reader
        kp = (*path, key)
        raw = t[key]
        if not isinstance(raw, str):
            raise r.fail(kp, f'expected a level with its unit, e.g. "4.5 V", got {show(raw)}')
        level, dim = r.convert(raw, kp, quantities.parse)
        if dim not in MEASURE_OF:
            raise r.fail(
                kp, f'"{raw}": give the level in V, A or W (its unit says what is measured)'
            )
        window = cx.window(t, path, "over") or (0.0, cx.duration)
        limits = read_limits(r, t, path, TIME, key, LIMITS)
        return check(key == "time_below", dim, level, window, limits)

    return parse


class DwellEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: DwellExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.estimate = self.low = self.high = 0.0
        self.covered = 0.0
        self.new = NewSamples()

    def _fractions(self, s: Sample) -> tuple[float, float, float]:
        """(estimate, lowest, highest) fraction of the sample's time beyond the level."""
        c = self.check
        if c.measure == "v":
            lo, mean, hi = s.vmin, s.v, s.vmax
            if not c.below:  # time above L is time below -L
                lo, mean, hi = -hi, -mean, -lo
            level = c.level if c.below else -c.level
            if hi < level:
                return 1.0, 1.0, 1.0
            if lo >= level:
                return 0.0, 0.0, 0.0
            upper = min(1.0, (hi - mean) / (hi - level)) if hi > level else 1.0
            lower = max(0.0, 1.0 - (mean - lo) / (level - lo)) if level > lo else 0.0
            ramp = (level - lo) / (hi - lo) if hi > lo else 0.5
            return min(max(ramp, lower), upper), lower, upper
        x = s.a if c.measure == "a" else s.w
        beyond = x < c.level if c.below else x > c.level
        return (1.0, 1.0, 1.0) if beyond else (0.0, 0.0, 0.0)

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        window = self.check.window
        if past(start, window):
            self._settle()
            return
        if not self.new.first(s):
            return
        inside = min(end, window[1]) - max(start, window[0])
        if s.n == 0 or inside <= 0:
            return
        estimate, low, high = self._fractions(s)
        self.estimate += estimate * inside
        self.low += low * inside
        self.high += high * inside
        self.covered += inside

    def _settle(self) -> None:
        window = self.check.window
        if self.covered == 0:
            self._resolve(False, None, "no samples in the window")
            return
        limits = self.check.limits
        detail = f"{self.estimate:.3g} s"
        if self.high - self.low >= 0.001:
            detail += f" (by the samples' extremes {self.low:.3g}..{self.high:.3g} s)"
        uncovered = (window[1] - window[0]) - self.covered
        if uncovered >= UNCOVERED_SHOWN:
            detail += f", {uncovered:.3g} s of the window uncovered by samples"
        self._settle_as(limits.judge(self.estimate), round(self.estimate, 4), detail)

    def finish(self, facts: RunFacts) -> None:
        self._settle()
