"""Per-bucket aggregates of samples (min/max/avg of v, a, w; readings; energy; charge), merged
into the `rollups` table so history over days never reads raw samples.

Built per batch in one tight loop over the sample rows (10-second buckets), then the minute
buckets are merged from those few partials: each sample is touched once, so the rollups add
little to the cost of writing it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# Indexes into a partial: [samples, n, v_min, v_max, v_sum, a_min, a_max, a_sum, w_min, w_max,
# w_sum, w_dt (W*ms), a_dt (A*ms)]; sums weighted by readings n.
_MINS = (2, 5, 8)
_MAXES = (3, 6, 9)
_SUMS = (0, 1, 4, 7, 10, 11, 12)
WH_PER_W_MS = 1 / 3_600_000
MAH_PER_A_MS = 1 / 3600

SampleRow = Sequence[Any]
"""(run, device, boot, seq, t, arrived, ts, dt, v, a, w, vmin, vmax, amax, n, status)"""


def _merge(into: list[float], other: list[float]) -> None:
    for i in _SUMS:
        into[i] += other[i]
    for i in _MINS:
        if other[i] < into[i]:
            into[i] = other[i]
    for i in _MAXES:
        if other[i] > into[i]:
            into[i] = other[i]


Key = tuple[int, str, int]
"""(run, device, bucket start)"""


def partials(rows: Iterable[SampleRow]) -> dict[Key, list[float]]:
    """10-second partials by (run, device, bucket start). Samples of failed reads (n = 0) count as
    samples and add no values. Rows come in time order, so a bucket's rows are mostly
    consecutive: they are summed in locals and stored when the bucket changes."""
    out: dict[Key, list[float]] = {}
    inf = float("inf")
    key: Key | None = None
    lo = hi = 0.0
    """The open bucket's span [lo, hi): a row inside it, of the same run and device, is summed
    without building a key."""
    run_now: int | None = None
    device_now: str | None = None
    cnt = nn = 0
    v_lo = a_lo = w_lo = inf
    v_hi = a_hi = w_hi = -inf
    v_s = a_s = w_s = w_dt = a_dt = 0.0

    def store() -> None:
        assert key is not None
        acc = [cnt, nn, v_lo, v_hi, v_s, a_lo, a_hi, a_s, w_lo, w_hi, w_s, w_dt, a_dt]
        if key in out:
            _merge(out[key], acc)
        else:
            out[key] = acc

    for run, device, _b, _s, t, _arr, _ts, dt, v, a, w, vmin, vmax, amax, n, _st in rows:
        if not lo <= t < hi or run != run_now or device != device_now:
            if key is not None:
                store()
            start = int(t // 10) * 10
            key, lo, hi, run_now, device_now = (run, device, start), start, start + 10, run, device
            cnt = nn = 0
            v_lo = a_lo = w_lo = inf
            v_hi = a_hi = w_hi = -inf
            v_s = a_s = w_s = w_dt = a_dt = 0.0
        cnt += 1
        if not n:
            continue
        nn += n
        if vmin < v_lo:
            v_lo = vmin
        if vmax > v_hi:
            v_hi = vmax
        if a < a_lo:
            a_lo = a
        if amax > a_hi:
            a_hi = amax
        if w < w_lo:
            w_lo = w
        if w > w_hi:
            w_hi = w
        v_s += v * n
        a_s += a * n
        w_s += w * n
        w_dt += w * dt
        a_dt += a * dt
    if key is not None:
        store()
    return out


def rollup_rows(rows: Iterable[SampleRow]) -> list[tuple[Any, ...]]:
    """Rows (width, bucket, run, device, samples, n, v_min, v_max, v_sum, a_min, a_max, a_sum,
    w_min, w_max, w_sum, wh, mah) to merge into `rollups`, for the 10 s and 1 min widths."""
    tens = partials(rows)
    minutes: dict[Key, list[float]] = {}
    for (run, device, bucket), acc in tens.items():
        key = (run, device, bucket // 60 * 60)
        if key in minutes:
            _merge(minutes[key], acc)
        else:
            minutes[key] = list(acc)
    out = []
    for width, table in ((10, tens), (60, minutes)):
        for (run, device, bucket), acc in table.items():
            finite = [x if x not in (float("inf"), float("-inf")) else None for x in acc[2:11]]
            out.append(
                (
                    width,
                    bucket,
                    run,
                    device,
                    int(acc[0]),
                    int(acc[1]),
                    *finite,
                    acc[11] * WH_PER_W_MS,
                    acc[12] * MAH_PER_A_MS,
                )
            )
    return out
