"""`measure = "v"`: a statistic (`stat`: min, max or avg) of samples overlapping the window
(`over`, default the whole run) is below and/or above a value. `min v` reads `vmin`, `max v`
`vmax` and `max a` `amax`, so dips and spikes between two reports count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.link import Sample
from harness.link.fields import MEASURES, QUANTITY_OF
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
from harness.scenario.model import Expect
from harness.scenario.reader import Path_

STATS = ("min", "max", "avg")


@dataclass(frozen=True, slots=True)
class StatExpect:
    measure: str
    """v, a or w."""
    stat: str
    """min, max or avg."""
    window: Window | None
    below: float | None
    above: float | None

    def describe(self) -> str:
        bounds = []
        if self.below is not None:
            bounds.append(f"< {self.below:g}")
        if self.above is not None:
            bounds.append(f"> {self.above:g}")
        return f"{self.stat} {self.measure} over {window_text(self.window)} {' and '.join(bounds)}"


def parse(cx: Context, t: dict[str, Any], path: Path_) -> StatExpect:
    r = cx.reader
    measure = r.string(t["measure"], (*path, "measure"), MEASURES)
    if "stat" not in t:
        raise r.fail(path, 'missing "stat" (min, max or avg)')
    stat = r.string(t["stat"], (*path, "stat"), STATS)
    window = r.window(t["over"], (*path, "over"), cx.duration) if "over" in t else None
    if "below" not in t and "above" not in t:
        raise r.fail(path, 'needs "below" or "above" (or both)')
    below = r.number(t["below"], (*path, "below"), -1e9, 1e9) if "below" in t else None
    above = r.number(t["above"], (*path, "above"), -1e9, 1e9) if "above" in t else None
    return StatExpect(measure, stat, window, below, above)


class StatEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: StatExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.value: float | None = None
        self.weight = 0

    def _pick(self, s: Sample) -> float:
        c = self.check
        if c.measure == "v":
            return s.vmin if c.stat == "min" else s.vmax if c.stat == "max" else s.v
        if c.measure == "a":
            return s.amax if c.stat == "max" else s.a
        return s.w

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        c = self.check
        if past(start, c.window):
            self._settle()
            return
        if s.n == 0 or not overlaps(start, end, c.window):
            return
        x = self._pick(s)
        if self.value is None:
            self.value, self.weight = x, s.n
        elif c.stat == "min":
            self.value = min(self.value, x)
        elif c.stat == "max":
            self.value = max(self.value, x)
        else:
            self.weight += s.n
            self.value += (x - self.value) * s.n / self.weight

    def _settle(self) -> None:
        c = self.check
        unit = QUANTITY_OF[c.measure].unit
        if self.value is None:
            self._resolve(False, None, "no samples in the window")
            return
        ok = (c.below is None or self.value < c.below) and (c.above is None or self.value > c.above)
        self._resolve(ok, round(self.value, 4), f"{self.value:.4g} {unit}")

    def finish(self, facts: RunFacts) -> None:
        self._settle()


register(
    Kind(
        key="measure",
        order=20,
        takes=("stat", "over", "below", "above"),
        check=StatExpect,
        parse=parse,
        evaluator=StatEvaluator,
    )
)
