"""`measure = "v"`, `"a"` or `"w"`: a statistic (`stat`) of the samples overlapping the window
(`over`, default the whole run) is within its limits (harness.scenario.expect.limits).

`min v` reads `vmin`, `max v` `vmax` and `max a` `amax`, so dips and spikes between two reports
count. `avg` weighs each sample by its readings; `rms` is the root mean square of the samples'
means weighted by their time (a lower bound of the readings' own RMS: a report carries no sum of
squares). `mean` and `peak` name `avg` and `max`.

`measure = "energy"` or `"charge"`: the integral over the window (default the scenario's
duration) of each sample's own mean power (`w`, the INA219's power register averaged over the
sample's readings) or current (`a`), times the part of its `dt` inside the window. A sample
with no reading, a lost one or the time a reset took is not bridged: it is reported as time
the window's samples did not cover."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.link import Sample
from harness.scenario.anchors import Span
from harness.scenario.expect.base import (
    UNCOVERED_SHOWN,
    Context,
    Evaluator,
    Kind,
    NewSamples,
    RunFacts,
    Window,
    overlaps,
    past,
    register,
    window_text,
)
from harness.scenario.expect.limits import Limits, read_limits
from harness.scenario.model import Expect
from harness.scenario.quantities import CHARGE, CURRENT, ENERGY, POWER, VOLTAGE, Dimension
from harness.scenario.reader import Path_

STATS = {"min": "min", "max": "max", "avg": "avg", "rms": "rms", "mean": "avg", "peak": "max"}
"""Statistic names a scenario may write, and the statistic each computes."""
INTEGRALS = ("energy", "charge")
DIMENSION_OF: dict[str, Dimension] = {
    "v": VOLTAGE,
    "a": CURRENT,
    "w": POWER,
    "energy": ENERGY,
    "charge": CHARGE,
}
MEASURES = tuple(DIMENSION_OF)
LIMITS = ("below", "above", "between", "at_most", "at_least")


@dataclass(frozen=True, slots=True)
class StatExpect:
    measure: str
    """v, a or w; or energy or charge (then `stat` is "")."""
    stat: str
    """As written (a key of STATS)."""
    window: Window | Span | None
    limits: Limits

    def describe(self) -> str:
        what = self.measure if not self.stat else f"{self.stat} {self.measure}"
        return f"{what} over {window_text(self.window)} {self.limits.describe()}"


def parse(cx: Context, t: dict[str, Any], path: Path_) -> StatExpect:
    r = cx.reader
    measure = r.string(t["measure"], (*path, "measure"), MEASURES)
    if measure in INTEGRALS:
        if "stat" in t:
            raise r.fail((*path, "stat"), f"{measure} is a total over the window: it takes no stat")
        stat = ""
        window = cx.window(t, path, "over") or (0.0, cx.duration)
    else:
        if "stat" not in t:
            raise r.fail(path, 'missing "stat" (min, max, avg or rms)')
        stat = r.string(t["stat"], (*path, "stat"), STATS)
        window = cx.window(t, path, "over")
    limits = read_limits(r, t, path, DIMENSION_OF[measure], measure, LIMITS)
    return StatExpect(measure, stat, window, limits)


class StatEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: StatExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.stat = STATS[check.stat]
        self.value: float | None = None
        self.weight = 0.0

    def _pick(self, s: Sample) -> float:
        c = self.check
        if c.measure == "v":
            return s.vmin if self.stat == "min" else s.vmax if self.stat == "max" else s.v
        if c.measure == "a":
            return s.amax if self.stat == "max" else s.a
        return s.w

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        c = self.check
        if past(start, c.window):
            self._settle()
            return
        if s.n == 0 or not overlaps(start, end, c.window):
            return
        x = self._pick(s)
        if self.stat == "rms":
            x, weight = x * x, max(end - start, 1e-6)
        else:
            weight = float(s.n)
        if self.value is None:
            self.value, self.weight = x, weight
        elif self.stat == "min":
            self.value = min(self.value, x)
        elif self.stat == "max":
            self.value = max(self.value, x)
        else:
            self.weight += weight
            self.value += (x - self.value) * weight / self.weight

    def _settle(self) -> None:
        if self.value is None:
            self._resolve(False, None, "no samples in the window")
            return
        value = math.sqrt(self.value) if self.stat == "rms" else self.value
        limits = self.check.limits
        self._settle_as(limits.judge(value), round(value, 6), limits.show(value))

    def finish(self, facts: RunFacts) -> None:
        self._settle()


class IntegralEvaluator(Evaluator):
    """Energy or charge over a window: the samples' own integration, and the time they left
    uncovered."""

    def __init__(self, expect: Expect, check: StatExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.total = 0.0
        self.covered = 0.0
        self.new = NewSamples()

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        window = self.check.window
        assert window is not None
        if past(start, window):
            self._settle()
            return
        if not self.new.first(s):
            return
        inside = min(end, window[1]) - max(start, window[0])
        if s.n == 0 or inside <= 0 or end <= start:
            return
        x = s.w if self.check.measure == "energy" else s.a
        self.total += x * inside
        self.covered += inside

    def _settle(self) -> None:
        window = self.check.window
        assert window is not None
        if self.covered == 0:
            self._resolve(False, None, "no samples in the window")
            return
        limits = self.check.limits
        uncovered = max(0.0, (window[1] - window[0]) - self.covered)
        detail = limits.show(self.total)
        if uncovered >= UNCOVERED_SHOWN:
            detail += f" ({uncovered:.3g} s of the window uncovered by samples)"
        self._settle_as(limits.judge(self.total), round(self.total, 9), detail)

    def finish(self, facts: RunFacts) -> None:
        self._settle()


def evaluator(expect: Expect, check: StatExpect) -> Evaluator:
    if check.measure in INTEGRALS:
        return IntegralEvaluator(expect, check)
    return StatEvaluator(expect, check)


register(
    Kind(
        key="measure",
        order=20,
        takes=("stat", "over", "from", "to", *LIMITS, "marginal"),
        check=StatExpect,
        parse=parse,
        evaluator=evaluator,
    )
)
