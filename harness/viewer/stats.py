"""Live statistics over the samples as they arrive: the last minute's min/max/avg, moving averages
over 1, 5 and 15 minutes, energy and charge since the start, and z-score outliers.

Everything is kept in one-second buckets (15 minutes of them at most), so memory stays flat
whatever the sample rate and nothing is summed twice: a window's totals are refolded from the
buckets when a second closes, never kept as running sums that drift. Times are unix seconds of a
sample's end; averages are weighted by the readings a sample holds (`n`), as the store's are.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

MEASURES = ("v", "a", "w")
WINDOW = 60
"""Seconds of the min/max/avg panel and of the z-score reference."""
MOVING = (60, 300, 900)
"""Moving-average windows in seconds (1, 5 and 15 minutes)."""
Z_LIMIT = 3.0
Z_MIN_SAMPLES = 10
"""A z-score needs this many samples in the reference window before it says anything."""
Z_FLOOR = {"v": 0.004, "a": 0.0001, "w": 0.002}
"""The smallest standard deviation a z-score divides by: one INA219 step (4 mV bus voltage,
0.1 mA current, 2 mW power), so a perfectly steady rail does not flag a one-step change."""


@dataclass(slots=True)
class _Bucket:
    second: int
    samples: int = 0
    n: int = 0
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """Reading-weighted sums of v, a, w."""
    lows: list[float] = field(default_factory=lambda: [math.inf] * 3)
    highs: list[float] = field(default_factory=lambda: [-math.inf] * 3)
    plain: list[float] = field(default_factory=lambda: [0.0] * 6)
    """Per-sample (unweighted) sum and sum of squares of v, a, w, for z-scores."""

    def add(
        self,
        values: tuple[float, float, float],
        lows: tuple[float, float, float],
        highs: tuple[float, float, float],
        n: int,
    ) -> None:
        self.samples += 1
        self.n += n
        v, a, w = values
        sums, plain, lo, hi = self.sums, self.plain, self.lows, self.highs
        sums[0] += v * n
        sums[1] += a * n
        sums[2] += w * n
        plain[0] += v
        plain[1] += v * v
        plain[2] += a
        plain[3] += a * a
        plain[4] += w
        plain[5] += w * w
        lo[0], lo[1], lo[2] = min(lo[0], lows[0]), min(lo[1], lows[1]), min(lo[2], lows[2])
        hi[0], hi[1], hi[2] = max(hi[0], highs[0]), max(hi[1], highs[1]), max(hi[2], highs[2])


def _r(x: float, digits: int = 6) -> float | None:
    """JSON-safe: a rounded finite number, or None."""
    return round(x, digits) if math.isfinite(x) else None


class RollingStats:
    def __init__(self) -> None:
        self._buckets: deque[_Bucket] = deque()
        self._closed_plain = [0.0] * 6
        self._closed_samples = 0
        self.energy_wh = 0.0
        self.charge_mah = 0.0
        self.covered = 0.0
        """Seconds of device time the samples so far cover."""
        self.outliers = 0
        self.samples = 0
        self.first: float | None = None
        self.last: float | None = None

    def add(
        self,
        t: float,
        v: float,
        a: float,
        w: float,
        vmin: float,
        vmax: float,
        amax: float,
        n: int,
        dt: float,
    ) -> tuple[str, ...]:
        """Take one sample ending at t (unix seconds) covering dt seconds; returns the measures
        whose value is an outlier against the minute before it (|z| > 3)."""
        second = math.floor(t)
        if not self._buckets or second > self._buckets[-1].second:
            self._open(second)
        bucket = self._buckets[-1]
        values = (v, a, w)
        flagged = self._outliers(values, bucket)
        bucket.add(values, (vmin, a, w), (vmax, amax, w), max(n, 1))
        self.energy_wh += w * dt / 3600
        self.charge_mah += a * dt / 3.6
        self.covered += dt
        self.samples += 1
        self.outliers += bool(flagged)
        self.first = t if self.first is None else self.first
        self.last = t
        return flagged

    def _open(self, second: int) -> None:
        """A new second: drop buckets past the longest window, refold the z reference."""
        self._buckets.append(_Bucket(second))
        horizon = second - max(MOVING)
        while self._buckets[0].second <= horizon:
            self._buckets.popleft()
        plain = [0.0] * 6
        count = 0
        for b in self._buckets:
            if second - WINDOW < b.second < second:
                count += b.samples
                for i in range(6):
                    plain[i] += b.plain[i]
        self._closed_plain, self._closed_samples = plain, count

    def _outliers(self, values: tuple[float, float, float], open_: _Bucket) -> tuple[str, ...]:
        count = self._closed_samples + open_.samples
        if count < Z_MIN_SAMPLES:
            return ()
        closed, plain = self._closed_plain, open_.plain
        flagged: tuple[str, ...] = ()
        for i, name in enumerate(MEASURES):
            mean = (closed[2 * i] + plain[2 * i]) / count
            var = (closed[2 * i + 1] + plain[2 * i + 1]) / count - mean * mean
            std = max(math.sqrt(var) if var > 0.0 else 0.0, Z_FLOOR[name])
            if abs(values[i] - mean) > Z_LIMIT * std:
                flagged += (name,)
        return flagged

    def _fold(self, seconds: int) -> dict[str, Any] | None:
        if not self._buckets:
            return None
        newest = self._buckets[-1].second
        n = samples = 0
        sums = [0.0, 0.0, 0.0]
        lows = [math.inf] * 3
        highs = [-math.inf] * 3
        for b in reversed(self._buckets):
            if b.second <= newest - seconds:
                break
            n += b.n
            samples += b.samples
            for i in range(3):
                sums[i] += b.sums[i]
                lows[i] = min(lows[i], b.lows[i])
                highs[i] = max(highs[i], b.highs[i])
        if not n:
            return None
        out: dict[str, Any] = {"samples": samples}
        for i, name in enumerate(MEASURES):
            out[name] = {"min": _r(lows[i]), "max": _r(highs[i]), "avg": _r(sums[i] / n)}
        return out

    def snapshot(self) -> dict[str, Any]:
        """The panel's figures: `window` (last minute: min/max/avg of v, a, w; v's extremes are
        the samples' vmin/vmax, a's maximum their amax), `moving` (averages over 1, 5, 15 min,
        with the seconds of data each holds), `energy` since the first sample, `outliers`."""
        moving: dict[str, Any] = {}
        span = 0.0 if self.first is None or self.last is None else self.last - self.first
        for seconds in MOVING:
            folded = self._fold(seconds)
            label = f"{seconds // 60}m"
            if folded is None:
                moving[label] = None
                continue
            moving[label] = {name: folded[name]["avg"] for name in MEASURES}
            moving[label]["seconds"] = round(min(span, seconds), 1)
        return {
            "window": self._fold(WINDOW),
            "window_seconds": WINDOW,
            "moving": moving,
            "energy": {
                "wh": _r(self.energy_wh, 9),
                "mah": _r(self.charge_mah, 6),
                "seconds": round(self.covered, 3),
            },
            "outliers": self.outliers,
            "samples": self.samples,
        }
