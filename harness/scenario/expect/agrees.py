"""`agrees_with_supply = "v"` (or `"a"`), `tolerance` (volts or amps), `over` (default the
whole run): the monitor agrees with the bench supply's own readback. Each readback taken in
the window is compared with the sample whose span covers its time: it agrees when it lies
within the sample's range, widened by the tolerance.

The range is what the sample saw over its span: volts `vmin..vmax`; amps `a - (amax - a) ..
amax` (a sample carries the mean and the maximum current, no minimum: the band is taken
symmetric about the mean). A readback taken during a ramp therefore agrees with a sample that
covers part of the ramp without any allowance for the ramp's slope. The supply's setting
latency (50 to 500 ms on real supplies) does not count at all: it delays when the rail changes,
and both instruments measure the same rail, so both see the change at the same time. What the
tolerance must hold is the difference between the two instruments: their offset and gain
errors, and the drop in the wires and the shunt between the supply's terminals and the
INA219's bus input (at 0.25 A through a 0.1 ohm shunt, 25 mV).

A readback no sample covers (the link lost it, the device was rebooting) is not judged. A run
in which no readback in the window was compared fails, saying why: a run without a supply (or
with a manual one, which has no readback) cannot show that the monitor agrees with the bench.
It fails at the first readback that disagrees; it passes once a sample past the window has
arrived, or at the end.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from harness.link import Sample
from harness.scenario import quantities
from harness.scenario.expect.base import (
    Context,
    Evaluator,
    Kind,
    RunFacts,
    Window,
    past,
    register,
    window_text,
)
from harness.scenario.expect.limits import read_value
from harness.scenario.model import Expect
from harness.scenario.reader import Path_

QUANTITIES = {"v": "V", "a": "A"}
DIMENSIONS = {"v": quantities.VOLTAGE, "a": quantities.CURRENT}
WHAT = {"v": "v is volts", "a": "a is amps"}
MAX_TOLERANCE = 32.0
"""Volts or amps: beyond the INA219's range (26 V, 3.2 A with a 0.1 ohm shunt) many times."""
PENDING_MAX = 256
"""Readbacks held while no sample covers them yet (a second or two of them at most)."""


@dataclass(frozen=True, slots=True)
class AgreeExpect:
    measure: str
    """v or a."""
    tolerance: float
    window: Window | None

    def describe(self) -> str:
        tolerance = quantities.format_value(self.tolerance, DIMENSIONS[self.measure])
        return (
            f"{self.measure} agrees with the supply's readback within {tolerance} "
            f"over {window_text(self.window)}"
        )


def parse(cx: Context, t: dict[str, Any], path: Path_) -> AgreeExpect:
    r = cx.reader
    measure = r.string(t["agrees_with_supply"], (*path, "agrees_with_supply"), QUANTITIES)
    if "tolerance" not in t:
        unit = QUANTITIES[measure]
        raise r.fail(path, f'missing "tolerance" (how far apart in {unit} still agrees)')
    where = (*path, "tolerance")
    tolerance = read_value(r, t["tolerance"], where, DIMENSIONS[measure], WHAT[measure])
    if not 0.0 <= tolerance <= MAX_TOLERANCE:
        raise r.fail(where, f"{tolerance:g} {QUANTITIES[measure]} is outside 0..{MAX_TOLERANCE:g}")
    window = r.window(t["over"], (*path, "over"), cx.duration) if "over" in t else None
    return AgreeExpect(measure, tolerance, window)


@dataclass(frozen=True, slots=True)
class _Span:
    start: float
    end: float
    lo: float
    hi: float


class AgreeEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: AgreeExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.pending: deque[tuple[float, float]] = deque(maxlen=PENDING_MAX)
        """Readbacks in the window (time, value) no sample has covered yet."""
        self.last: _Span | None = None
        self.readbacks = 0
        """Readbacks seen, in the window or not."""
        self.compared = 0
        self.worst = 0.0

    def _in_window(self, at: float) -> bool:
        w = self.check.window
        return w is None or w[0] <= at <= w[1]

    def on_readback(self, at: float, volts: float, amps: float) -> None:
        self.readbacks += 1
        if self.resolved or not self._in_window(at):
            return
        value = volts if self.check.measure == "v" else amps
        last = self.last
        if last is not None and last.start <= at <= last.end:
            self._compare(at, value, last)
        else:
            self.pending.append((at, value))

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        if self.resolved or s.n == 0:
            return
        tol = self.check.tolerance
        if self.check.measure == "v":
            lo, hi = s.vmin, s.vmax
        else:
            lo, hi = s.a - (s.amax - s.a), s.amax
        span = _Span(start, end, lo - tol, hi + tol)
        self.last = span
        while self.pending and self.pending[0][0] <= end and not self.resolved:
            at, value = self.pending.popleft()
            if at >= start:
                self._compare(at, value, span)
            # else: before this sample and covered by none: not judged
        if not self.resolved and past(start, self.check.window):
            self._settle()

    def _compare(self, at: float, value: float, span: _Span) -> None:
        self.compared += 1
        off = max(span.lo - value, value - span.hi, 0.0)
        c = self.check
        unit = QUANTITIES[c.measure]
        tol = c.tolerance
        if off > 0:
            self._resolve(
                False,
                round(off + tol, 4),
                f"at {at:.1f} s the supply read {value:.4g} {unit}, the monitor "
                f"{span.lo + tol:.4g}..{span.hi - tol:.4g} {unit} (off by {off + tol:.3g} {unit}, "
                f"tolerance {tol:g} {unit})",
            )
            return
        self.worst = max(self.worst, max(span.lo + tol - value, value - span.hi + tol, 0.0))

    def _settle(self) -> None:
        if self.compared:
            worst = quantities.format_value(self.worst, DIMENSIONS[self.check.measure])
            self._resolve(
                True,
                round(self.worst, 4),
                f"{self.compared} readbacks agree, the farthest {worst} apart",
            )
        elif self.readbacks:
            self._resolve(False, None, "no readback in the window was covered by a sample")
        else:
            self._resolve(
                False,
                None,
                "no supply readback to compare: the run drove no supply that reads back "
                "(give --supply or --bench; a manual supply has none)",
            )

    def finish(self, facts: RunFacts) -> None:
        self._settle()


register(
    Kind(
        key="agrees_with_supply",
        order=70,
        takes=("tolerance", "over"),
        check=AgreeExpect,
        parse=parse,
        evaluator=AgreeEvaluator,
    )
)
