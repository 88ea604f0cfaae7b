"""A run's V, A and W over scenario time in at most `BUCKETS` buckets of min, mean and max, and
the bench supply's readback as bucket means: what the report's chart draws. Memory stays
bounded whatever the run's length: when a sample falls past the last bucket, the width doubles
and neighbouring buckets merge, so a bucket always holds whole buckets of the width before.
The columns are the viewer's history columns (`t` a bucket's start), so a chart made from the
log and one made during the run are read alike."""

from __future__ import annotations

import math
from typing import Any

BUCKETS = 2000
MIN_WIDTH = 0.01
"""Seconds: the narrowest bucket (a sample covers at least a report interval, 10 ms or more)."""
ENVELOPE = ("v_min", "v_avg", "v_max", "a_min", "a_avg", "a_max", "w_min", "w_avg", "w_max")
"""The chart's columns after `t` and `n` (readings)."""
READBACK = ("volts", "amps")

_MIN, _SUM, _MAX = 0, 1, 2


class _Buckets:
    """Rows of [weight, *values] keyed by bucket number; each value is merged as a minimum, a
    weighted sum (shown as the mean) or a maximum, as `kinds` says."""

    def __init__(self, span: float, kinds: tuple[int, ...], buckets: int = BUCKETS) -> None:
        self.buckets = buckets
        self.kinds = kinds
        self.width = max(span / buckets, MIN_WIDTH) if math.isfinite(span) and span > 0 else 1.0
        self._rows: dict[int, list[float]] = {}

    def _add(self, t: float, weight: float, values: tuple[float, ...]) -> None:
        t = max(t, 0.0)
        k = int(t // self.width)
        while k >= self.buckets:
            self._double()
            k = int(t // self.width)
        row = self._rows.get(k)
        if row is None:
            self._rows[k] = [
                weight,
                *(
                    x * weight if kind == _SUM else x
                    for kind, x in zip(self.kinds, values, strict=True)
                ),
            ]
        else:
            self._merge(row, weight, values, scaled=False)

    def _merge(self, row: list[float], weight: float, values: Any, scaled: bool) -> None:
        row[0] += weight
        for i, (kind, x) in enumerate(zip(self.kinds, values, strict=True), 1):
            if kind == _MIN:
                row[i] = min(row[i], x)
            elif kind == _MAX:
                row[i] = max(row[i], x)
            else:
                row[i] += x if scaled else x * weight

    def _double(self) -> None:
        self.width *= 2
        merged: dict[int, list[float]] = {}
        for k in sorted(self._rows):
            row = self._rows[k]
            into = merged.get(k // 2)
            if into is None:
                merged[k // 2] = row
            else:
                self._merge(into, row[0], row[1:], scaled=True)
        self._rows = merged

    def __len__(self) -> int:
        return len(self._rows)

    def _columns(self, names: tuple[str, ...], weight: str | None) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"t": []}
        if weight is not None:
            out[weight] = []
        for name in names:
            out[name] = []
        for k in sorted(self._rows):
            row = self._rows[k]
            out["t"].append(round(k * self.width, 6))
            if weight is not None:
                out[weight].append(row[0])
            for name, kind, x in zip(names, self.kinds, row[1:], strict=True):
                out[name].append(x / row[0] if kind == _SUM else x)
        return out


class Envelope(_Buckets):
    """V, A and W: min, mean weighted by readings, max; as the log's rollups take them (a
    sample's `vmin`/`vmax` for V, its mean and `amax` for A, its mean for W)."""

    def __init__(self, span: float, buckets: int = BUCKETS) -> None:
        super().__init__(span, (_MIN, _SUM, _MAX) * 3, buckets)

    def add(
        self,
        t: float,
        n: int,
        v: tuple[float, float, float],
        a: tuple[float, float, float],
        w: tuple[float, float, float],
    ) -> None:
        """A sample ending at scenario second `t`, of `n` readings, each measure as (min, mean,
        max). A sample without readings says nothing of the rail and is left out."""
        if n > 0:
            self._add(t, n, (*v, *a, *w))

    def columns(self) -> dict[str, list[float]]:
        return self._columns(ENVELOPE, "n")


class Trace(_Buckets):
    """The supply's readback, the mean of each bucket's readings."""

    def __init__(self, span: float, buckets: int = BUCKETS) -> None:
        super().__init__(span, (_SUM, _SUM), buckets)

    def add(self, t: float, volts: float, amps: float) -> None:
        self._add(t, 1.0, (volts, amps))

    def columns(self) -> dict[str, list[float]]:
        return self._columns(READBACK, None)
