"""`outliers = ["4.75 V", "5.25 V"]`: the samples in the window (`over`, default the whole run)
whose readings left that band are counted, against `at_most` and/or `at_least`. The band's unit
says what is measured (V, A or W). A voltage sample is outside when its minimum or maximum is;
a current sample when its maximum or its mean is; a power sample when its mean is (the report
carries no other extremes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.link import Sample
from harness.scenario import quantities
from harness.scenario.anchors import Span
from harness.scenario.expect.base import (
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
from harness.scenario.expect.dwell import MEASURE_OF
from harness.scenario.expect.limits import Limits, read_limits, read_value
from harness.scenario.model import Expect
from harness.scenario.quantities import COUNT, Dimension, format_value
from harness.scenario.reader import Path_, show

LIMITS = ("at_most", "at_least")


@dataclass(frozen=True, slots=True)
class OutlierExpect:
    dim: Dimension
    lo: float
    hi: float
    window: Window | Span | None
    limits: Limits

    def describe(self) -> str:
        band = f"{format_value(self.lo, self.dim)}..{format_value(self.hi, self.dim)}"
        return f"samples outside {band} over {window_text(self.window)} {self.limits.describe()}"


def parse(cx: Context, t: dict[str, Any], path: Path_) -> OutlierExpect:
    r = cx.reader
    kp = (*path, "outliers")
    band = t["outliers"]
    if not isinstance(band, list) or len(band) != 2 or not all(isinstance(v, str) for v in band):
        raise r.fail(
            kp,
            f'expected the band [low, high] with units, e.g. ["4.75 V", "5.25 V"], got {show(band)}',
        )
    dim = r.convert(band[0], (*kp, 1), quantities.parse)[1]
    if dim not in MEASURE_OF:
        raise r.fail(
            (*kp, 1), f'"{band[0]}": give the band in V, A or W (its unit says what is measured)'
        )
    lo, hi = (read_value(r, v, (*kp, i), dim, MEASURE_OF[dim]) for i, v in enumerate(band, 1))
    if hi < lo:
        raise r.fail(kp, "the high bound comes first; write [low, high]")
    window = cx.window(t, path, "over")
    limits = read_limits(r, t, path, COUNT, "the count", LIMITS)
    return OutlierExpect(dim, lo, hi, window, limits)


class OutlierEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: OutlierExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.count = 0
        self.seen = 0
        self.first: float | None = None
        self.new = NewSamples()

    def _outside(self, s: Sample) -> bool:
        c = self.check
        measure = MEASURE_OF[c.dim]
        if measure == "v":
            return s.vmin < c.lo or s.vmax > c.hi
        if measure == "a":
            return s.amax > c.hi or s.a < c.lo
        return not c.lo <= s.w <= c.hi

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        c = self.check
        if past(start, c.window):
            self._settle()
            return
        if not self.new.first(s):
            return
        if s.n == 0 or not overlaps(start, end, c.window):
            return
        self.seen += 1
        if self._outside(s):
            self.count += 1
            if self.first is None:
                self.first = start

    def _settle(self) -> None:
        if self.seen == 0:
            self._resolve(False, None, "no samples in the window")
            return
        detail = f"{self.count} of {self.seen} samples"
        if self.first is not None:
            detail += f", the first at {self.first:.2f} s"
        self._settle_as(self.check.limits.judge(self.count), self.count, detail)

    def finish(self, facts: RunFacts) -> None:
        self._settle()


register(
    Kind(
        key="outliers",
        order=24,
        takes=("over", "from", "to", *LIMITS),
        check=OutlierExpect,
        parse=parse,
        evaluator=OutlierEvaluator,
    )
)
