"""The scenario's supply profile: volts and amps of the monitored rail, piecewise linear in time.

A point ramps linearly from the previous one; two points at the same time make a step. Means
and extremes over an interval are exact (the power v*a is quadratic on a segment), so a model
can report a second of readings in one call and still catch a 20 ms dip.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SupplyPoint:
    at: float
    volts: float
    amps: float


@dataclass(frozen=True, slots=True)
class Span:
    """Means and extremes of the rail over an interval."""

    v: float
    a: float
    w: float
    vmin: float
    vmax: float
    amin: float
    amax: float
    wmax: float


class Profile:
    def __init__(self, points: list[SupplyPoint]) -> None:
        if not points:
            raise ValueError("a profile needs at least one point")
        self.points = sorted(points, key=lambda p: p.at)
        self._times = [p.at for p in self.points]

    @classmethod
    def constant(cls, volts: float, amps: float) -> Profile:
        return cls([SupplyPoint(0.0, volts, amps)])

    def _value(self, t: float, *, left: bool) -> tuple[float, float]:
        """(volts, amps) at t; `left` takes the limit from before t where a step is."""
        pts = self.points
        i = (bisect.bisect_left if left else bisect.bisect_right)(self._times, t)
        if i == 0:
            return pts[0].volts, pts[0].amps
        if i >= len(pts):
            return pts[-1].volts, pts[-1].amps
        p0, p1 = pts[i - 1], pts[i]
        frac = (t - p0.at) / (p1.at - p0.at)
        return p0.volts + (p1.volts - p0.volts) * frac, p0.amps + (p1.amps - p0.amps) * frac

    def at(self, t: float) -> tuple[float, float]:
        return self._value(t, left=False)

    def _knots(self, t0: float, t1: float) -> list[float]:
        lo = bisect.bisect_right(self._times, t0)
        hi = bisect.bisect_left(self._times, t1)
        return [t0, *sorted(set(self._times[lo:hi])), t1]

    def span(self, t0: float, t1: float) -> Span:
        """Exact means and extremes over [t0, t1] (t1 > t0), or the values at t0 if equal."""
        if t1 <= t0:
            v, a = self.at(t0)
            return Span(v, a, v * a, v, v, a, a, v * a)
        knots = self._knots(t0, t1)
        vs: list[float] = []
        as_: list[float] = []
        ws: list[float] = []
        iv = ia = iw = 0.0
        for x0, x1 in itertools.pairwise(knots):
            v0, a0 = self._value(x0, left=False)
            v1, a1 = self._value(x1, left=True)
            h = x1 - x0
            iv += (v0 + v1) / 2 * h
            ia += (a0 + a1) / 2 * h
            vm, am = (v0 + v1) / 2, (a0 + a1) / 2
            iw += h / 6 * (v0 * a0 + 4 * vm * am + v1 * a1)  # Simpson: exact for a quadratic
            vs += (v0, v1)
            as_ += (a0, a1)
            ws += (v0 * a0, v1 * a1)
            dv, da = v1 - v0, a1 - a0
            if dv * da < 0:  # v*a has a maximum inside the segment
                s = -(v0 * da + a0 * dv) / (2 * dv * da)
                if 0 < s < 1:
                    ws.append((v0 + dv * s) * (a0 + da * s))
        d = t1 - t0
        return Span(iv / d, ia / d, iw / d, min(vs), max(vs), min(as_), max(as_), max(ws))

    def crossings(self, level: float, start: float, end: float) -> list[float]:
        """Times in (start, end] where the volts go from >= level to < level or back."""
        out: list[float] = []
        knots = self._knots(start, end)
        for x0, x1 in itertools.pairwise(knots):
            v0, _ = self._value(x0, left=False)
            v1, _ = self._value(x1, left=True)
            if (v0 < level) != (v1 < level):
                out.append(x0 + (x1 - x0) * (level - v0) / (v1 - v0) if v1 != v0 else x1)
            vr, _ = self._value(x1, left=False)
            if x1 < end and (v1 < level) != (vr < level):
                out.append(x1)
        return [t for t in out if start < t <= end]

    @property
    def end(self) -> float:
        return self.points[-1].at
