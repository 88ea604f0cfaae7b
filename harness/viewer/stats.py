"""Live statistics over the samples as they arrive: the last minute's min/max/avg, moving averages
over 1, 5 and 15 minutes, energy and charge since the start, and z-score outliers.

Everything is kept in one-second buckets (15 minutes of them at most), so memory stays flat
whatever the sample rate and nothing is summed twice: a window's totals are refolded from the
buckets when a second closes, never kept as running sums that drift. Times are unix seconds of a
sample's end; averages are weighted by the readings a sample holds (`n`), as the store's are.
"""

from __future__ import annotations

import itertools
import math
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from operator import mul
from typing import Any, NamedTuple

from harness.link.fields import MEASURES

WINDOW = 60
"""Seconds of the min/max/avg panel and of the z-score reference."""
MOVING = (60, 300, 900)
"""Moving-average windows in seconds (1, 5 and 15 minutes)."""
Z_LIMIT = 3.0
Z_MIN_SAMPLES = 5
"""A z-score needs this many samples in the reference window before it says anything: at the
default 1 report/s a sag 5 s into a run is already flagged, and the floor below keeps so few
samples of a steady rail from flagging noise."""
Z_FLOOR = {"v": 0.004, "a": 0.0001, "w": 0.002}
"""The smallest standard deviation a z-score divides by: one INA219 step (4 mV bus voltage,
0.1 mA current, 2 mW power), so a perfectly steady rail does not flag a one-step change."""
_V_FLOOR, _A_FLOOR, _W_FLOOR = (Z_FLOOR[name] for name in MEASURES)


@dataclass(slots=True)
class _Bucket:
    """One second's totals."""

    second: int
    samples: int = 0
    n: int = 0
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """Reading-weighted sums of v, a, w."""
    lows: list[float] = field(default_factory=lambda: [math.inf] * 3)
    highs: list[float] = field(default_factory=lambda: [-math.inf] * 3)
    plain: list[float] = field(default_factory=lambda: [0.0] * 6)
    """Per-sample (unweighted) sum and sum of squares of v, a, w, for z-scores."""
    wh: float = 0.0
    mah: float = 0.0
    covered: float = 0.0


ROW = 8
"""Values a sample of the open second keeps, one after another in one flat list:
(v, a, w, vmin, vmax, amax, n, dt). Flat, so a sample adds no object the garbage collector
must walk, and a column is a strided slice."""
FOLD_SAMPLES = 128
"""Samples of the open second held in the list before they are totalled and folded into the
second's running totals. More than the fastest device reports in a second (one every 10 ms),
so only a flood folds; there the open second holds at most this many samples, not thousands
of them until it closes."""
_FOLD_VALUES = FOLD_SAMPLES * ROW


_SECOND, _SAMPLES, _N = 0, 1, 2
_SUMS, _LOWS, _HIGHS, _PLAIN = 3, 6, 9, 12
_WH, _MAH, _COVERED = 18, 19, 20
_KEPT = 21
"""Where a kept second's totals sit among the columns (`_kept`): the sums, lows and highs of v,
a, w three apiece, the plain sums six."""


class _Window(NamedTuple):
    """Totals of the closed seconds within a window."""

    n: float
    samples: float
    sums: list[float]
    lows: list[float]
    highs: list[float]


def _kept(b: _Bucket) -> tuple[float, ...]:
    """A closed second's totals as the last 15 minutes keep them: 21 doubles, one in each of
    the kept columns (the same values: the second and the counts are whole numbers a double
    holds exactly)."""
    return (b.second, b.samples, b.n, *b.sums, *b.lows, *b.highs, *b.plain, b.wh, b.mah, b.covered)


def _totals(second: int, rows: list[float]) -> _Bucket:
    """A second's totals from its samples' values (ROW a sample, flat), column by column (the
    loops run in C)."""
    b = _Bucket(second)
    if not rows:
        return b
    v, a, w, vmin, vmax, amax, n, dt = (rows[i::ROW] for i in range(ROW))
    k = n if min(n) >= 1 else list(map(max, n, itertools.repeat(1)))  # a failed read weighs one
    sv, sa, sw = sum(v), sum(a), sum(w)
    b.samples, b.n = len(v), int(sum(k))
    if min(k) == max(k):  # the usual second: every sample the same count of readings
        b.sums = [sv * k[0], sa * k[0], sw * k[0]]
    else:
        b.sums = [sum(map(mul, v, k)), sum(map(mul, a, k)), sum(map(mul, w, k))]
    b.lows = [min(vmin), min(a), min(w)]
    b.highs = [max(vmax), max(amax), max(w)]
    b.plain = [sv, sum(map(mul, v, v)), sa, sum(map(mul, a, a)), sw, sum(map(mul, w, w))]
    if min(dt) == max(dt):  # and the same length
        b.wh, b.mah, b.covered = sw * dt[0] / 3600, sa * dt[0] / 3.6, dt[0] * len(dt)
    else:
        b.wh, b.mah = sum(map(mul, w, dt)) / 3600, sum(map(mul, a, dt)) / 3.6
        b.covered = sum(dt)
    return b


def _merged(a: _Bucket, b: _Bucket) -> _Bucket:
    """The totals of one second's samples in `a` and those in `b` together."""
    return _Bucket(
        a.second,
        a.samples + b.samples,
        a.n + b.n,
        [x + y for x, y in zip(a.sums, b.sums, strict=True)],
        [min(x, y) for x, y in zip(a.lows, b.lows, strict=True)],
        [max(x, y) for x, y in zip(a.highs, b.highs, strict=True)],
        [x + y for x, y in zip(a.plain, b.plain, strict=True)],
        a.wh + b.wh,
        a.mah + b.mah,
        a.covered + b.covered,
    )


def _bounds(
    plain: list[float], count: int
) -> tuple[float, float, float, float, float, float] | None:
    """(low, high) of v, a, w at Z_LIMIT standard deviations (each at least its Z_FLOOR) about
    the mean, from plain sums and sums of squares; None below Z_MIN_SAMPLES samples. Written
    out per measure: while a run starts it is called for every sample."""
    if count < Z_MIN_SAMPLES:
        return None
    sv, qv, sa, qa, sw, qw = plain
    mv, ma, mw = sv / count, sa / count, sw / count
    var_v, var_a, var_w = qv / count - mv * mv, qa / count - ma * ma, qw / count - mw * mw
    sd_v = math.sqrt(var_v) if var_v > _V_FLOOR * _V_FLOOR else _V_FLOOR
    sd_a = math.sqrt(var_a) if var_a > _A_FLOOR * _A_FLOOR else _A_FLOOR
    sd_w = math.sqrt(var_w) if var_w > _W_FLOOR * _W_FLOOR else _W_FLOOR
    rv, ra, rw = Z_LIMIT * sd_v, Z_LIMIT * sd_a, Z_LIMIT * sd_w
    return (mv - rv, mv + rv, ma - ra, ma + ra, mw - rw, mw + rw)


def _r(x: float, digits: int = 6) -> float | None:
    """JSON-safe: a rounded finite number, or None."""
    return round(x, digits) if math.isfinite(x) else None


class RollingStats:
    def __init__(self) -> None:
        self._columns: tuple[array[float], ...] = tuple(array("d") for _ in range(_KEPT))
        """The closed seconds within the longest window, oldest first, column by column (an
        array of doubles per total, `_SECOND` .. `_COVERED`): no object a second, and a window's
        totals are sums, minima and maxima of the columns' slices, folded in C."""
        self._second: int | None = None
        self._rows: list[float] = []
        self._folded: _Bucket | None = None
        """The open second and its samples, totalled when it closes: the totals of those folded
        so far (FOLD_SAMPLES at a time), and the rest in the list."""
        self._bounds: tuple[float, float, float, float, float, float] | None = None
        """(low, high) of v, a and w beyond which a sample of the open second is an outlier;
        None while the minute before holds too few samples."""
        self._cold = [0.0] * 6
        self._cold_count = 0
        """Plain sums and count of the minute before the open second and of the open second's
        samples so far; kept only while `_bounds` is None."""
        self._closed = _Bucket(0)
        """Energy, charge and time of every closed second, also those no longer kept."""
        self._windows: dict[int, _Window | None] = {}
        self._windows_for: int | None = None
        """The closed seconds' totals by window, and the open second they were folded for."""
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
        whose value is an outlier (|z| > 3) against the minute before its second (and, while
        that minute holds fewer than Z_MIN_SAMPLES samples, its second's samples before it).

        It runs for every sample, so it does the least it can: compare against the outlier
        bounds (set once a second) and keep the values; a second is totalled when it closes.
        A sample older than the open second counts in the open second."""
        second = math.floor(t)
        if self._second is None or second > self._second:
            self._open(second)
        flagged: tuple[str, ...] = ()
        bounds = self._bounds
        if bounds is None:  # too few samples in the minute before: count this second's too
            bounds = self._cold_bounds(v, a, w)
        if bounds is not None:
            v_lo, v_hi, a_lo, a_hi, w_lo, w_hi = bounds
            if not (v_lo <= v <= v_hi and a_lo <= a <= a_hi and w_lo <= w <= w_hi):
                checks = (("v", v, v_lo, v_hi), ("a", a, a_lo, a_hi), ("w", w, w_lo, w_hi))
                flagged = tuple(name for name, x, lo, hi in checks if not lo <= x <= hi)
                self.outliers += 1
        rows = self._rows
        rows.extend((v, a, w, vmin, vmax, amax, n, dt))
        if len(rows) >= _FOLD_VALUES:
            self._folded = self._open_totals()
            self._rows = []
        self.samples += 1
        if self.first is None:
            self.first = t
        self.last = t
        return flagged

    def _open(self, second: int) -> None:
        """A new second: total the one before, drop seconds past the longest window, and set
        the outlier bounds from the seconds of the minute before."""
        columns = self._columns
        if self._second is not None:
            b = self._open_totals()
            for column, value in zip(columns, _kept(b), strict=True):
                column.append(value)
            closed = self._closed
            closed.wh += b.wh
            closed.mah += b.mah
            closed.covered += b.covered
        self._second, self._rows, self._folded = second, [], None
        gone = bisect_right(columns[_SECOND], second - max(MOVING))
        if gone:
            for column in columns:
                del column[:gone]
        start = bisect_right(columns[_SECOND], second - WINDOW)
        count = int(sum(columns[_SAMPLES][start:]))
        plain = [sum(columns[_PLAIN + i][start:]) for i in range(6)]
        self._bounds = _bounds(plain, count)
        self._cold = plain
        self._cold_count = count

    @property
    def kept(self) -> int:
        """Closed seconds kept (at most the longest window's)."""
        return len(self._columns[_SECOND])

    def _cold_bounds(
        self, v: float, a: float, w: float
    ) -> tuple[float, float, float, float, float, float] | None:
        """Bounds for a second whose minute before holds too few samples: that minute and the
        samples of this second before this one (as a rolling z-score would have it); then the
        sample joins them. Only at the start and after a long silence."""
        cold = self._cold
        bounds = _bounds(cold, self._cold_count)
        cold[0] += v
        cold[1] += v * v
        cold[2] += a
        cold[3] += a * a
        cold[4] += w
        cold[5] += w * w
        self._cold_count += 1
        return bounds

    def _open_totals(self) -> _Bucket:
        """The open second's totals so far (its number is set)."""
        assert self._second is not None
        b = _totals(self._second, self._rows)
        return b if self._folded is None else _merged(self._folded, b)

    def _closed_in_windows(self) -> dict[int, _Window | None]:
        """The kept closed seconds' totals within each window (WINDOW and MOVING) that ends
        with the open second, None for a window that holds none. They change only when a
        second closes, so they are folded once a second (column by column, the loops in C)
        and every snapshot within that second merges its open second into them."""
        if self._windows_for != self._second:
            assert self._second is not None
            windows: dict[int, _Window | None] = {}
            columns = self._columns
            for seconds in (WINDOW, *MOVING):
                start = bisect_right(columns[_SECOND], self._second - seconds)
                if start == len(columns[_SECOND]):
                    windows[seconds] = None
                    continue
                windows[seconds] = _Window(
                    sum(columns[_N][start:]),
                    sum(columns[_SAMPLES][start:]),
                    [sum(columns[_SUMS + i][start:]) for i in range(3)],
                    [min(columns[_LOWS + i][start:]) for i in range(3)],
                    [max(columns[_HIGHS + i][start:]) for i in range(3)],
                )
            self._windows, self._windows_for = windows, self._second
        return self._windows

    def _fold(self, open_: _Bucket, seconds: int) -> dict[str, Any] | None:
        """The figures of the last `seconds`: its closed seconds and the open one."""
        closed = self._closed_in_windows()[seconds]
        if closed is None:
            closed = _Window(0, 0, [0.0] * 3, [math.inf] * 3, [-math.inf] * 3)
        n = closed.n + open_.n
        if not n:
            return None
        out: dict[str, Any] = {"samples": int(closed.samples + open_.samples)}
        for i, name in enumerate(MEASURES):
            out[name] = {
                "min": _r(min(closed.lows[i], open_.lows[i])),
                "max": _r(max(closed.highs[i], open_.highs[i])),
                "avg": _r((closed.sums[i] + open_.sums[i]) / n),
            }
        return out

    def snapshot(self) -> dict[str, Any]:
        """The panel's figures: `window` (last minute: min/max/avg of v, a, w; v's extremes are
        the samples' vmin/vmax, a's maximum their amax), `moving` (averages over 1, 5, 15 min,
        with the seconds of data each holds), `energy` since the first sample, `outliers`."""
        moving: dict[str, Any] = {}
        span = 0.0 if self.first is None or self.last is None else self.last - self.first
        open_ = _Bucket(0) if self._second is None else self._open_totals()
        closed = self._closed
        for seconds in MOVING:
            folded = None if self._second is None else self._fold(open_, seconds)
            label = f"{seconds // 60}m"
            if folded is None:
                moving[label] = None
                continue
            moving[label] = {name: folded[name]["avg"] for name in MEASURES}
            moving[label]["seconds"] = round(min(span, seconds), 1)
        return {
            "window": None if self._second is None else self._fold(open_, WINDOW),
            "window_seconds": WINDOW,
            "moving": moving,
            "energy": {
                "wh": _r(closed.wh + open_.wh, 9),
                "mah": _r(closed.mah + open_.mah, 6),
                "seconds": round(closed.covered + open_.covered, 3),
            },
            "outliers": self.outliers,
            "samples": self.samples,
        }
