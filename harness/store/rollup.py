"""Per-bucket aggregates of samples (min/max/avg of v, a, w; readings; energy; charge), merged
into the `rollups` table so history over days never reads raw samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.store.schema import ROLLUP_WIDTHS

WH_PER_W_MS = 1 / 3_600_000
MAH_PER_A_MS = 1 / 3600


@dataclass(slots=True)
class Bucket:
    samples: int = 0
    n: int = 0
    v_min: float = math.inf
    v_max: float = -math.inf
    v_sum: float = 0.0
    a_min: float = math.inf
    a_max: float = -math.inf
    a_sum: float = 0.0
    w_min: float = math.inf
    w_max: float = -math.inf
    w_sum: float = 0.0
    wh: float = 0.0
    mah: float = 0.0

    def add(
        self,
        v: float,
        a: float,
        w: float,
        vmin: float,
        vmax: float,
        amax: float,
        n: int,
        dt_ms: int,
    ) -> None:
        self.samples += 1
        if n == 0:
            return  # a sample of failed reads: counted, no values
        self.n += n
        self.v_min = min(self.v_min, vmin)
        self.v_max = max(self.v_max, vmax)
        self.v_sum += v * n
        self.a_min = min(self.a_min, a)
        self.a_max = max(self.a_max, amax)
        self.a_sum += a * n
        self.w_min = min(self.w_min, w)
        self.w_max = max(self.w_max, w)
        self.w_sum += w * n
        self.wh += w * dt_ms * WH_PER_W_MS
        self.mah += a * dt_ms * MAH_PER_A_MS

    def row(self) -> tuple[int | float | None, ...]:
        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return (
            self.samples,
            self.n,
            finite(self.v_min),
            finite(self.v_max),
            self.v_sum,
            finite(self.a_min),
            finite(self.a_max),
            self.a_sum,
            finite(self.w_min),
            finite(self.w_max),
            self.w_sum,
            self.wh,
            self.mah,
        )


class Rollups:
    """Buckets touched since the last flush, for every width."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[int, int, int], Bucket] = {}

    def add(
        self,
        run: int,
        t: float,
        v: float,
        a: float,
        w: float,
        vmin: float,
        vmax: float,
        amax: float,
        n: int,
        dt_ms: int,
    ) -> None:
        for width in ROLLUP_WIDTHS:
            key = (width, int(t // width) * width, run)
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = Bucket()
            bucket.add(v, a, w, vmin, vmax, amax, n, dt_ms)

    def take(self) -> list[tuple[int | float | None, ...]]:
        """Rows (width, bucket, run, aggregates...) to merge, and start afresh."""
        rows = [(*key, *b.row()) for key, b in self.buckets.items()]
        self.buckets = {}
        return rows
