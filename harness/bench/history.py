"""History: fill a fresh database with 48 h at 10 Hz (1.73 M samples, with both rollups) in
the writer's batches of 1,000 rows, then draw it at 2,000 points over 48 h, 1 h and 1 min as
the viewer's history page asks for it (a reader connection of its own)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from harness.bench.goals import Group
from harness.link import Sample
from harness.scenario.model import DEFAULT_DEVICE
from harness.store import queries
from harness.store.db import (
    Batch,
    create_run,
    open_for_reading,
    open_for_writing,
    sample_row,
    write_batch,
)

HOURS = 48.0
RATE = 10.0
POINTS = 2000
T0 = 1.8e9
SPANS = (("48 h", HOURS * 3600), ("1 h", 3600.0), ("1 min", 60.0))
REPEATS = 5


def _row(run: int, i: int, t: float) -> tuple[Any, ...]:
    v = 5.0 + (i % 100) / 1000
    vmin, vmax, dut = v - 0.002, v + 0.002, DEFAULT_DEVICE
    return (run, dut, 1, i, t, t, i * 100, 100, v, 0.25, v * 0.25, vmin, vmax, 0.26, 50, "ok")


def _fill(db: Path, count: int) -> float:
    """Rows/s of the writer's batches (building the rows included)."""
    conn = open_for_writing(db)
    run = create_run(conn, "run", "bench-history", "mock", 0, T0)
    step = 1 / RATE
    rows: list[tuple[Any, ...]] = []
    start = time.perf_counter()
    # Rows as sample_row builds them, without a Sample each (the fill measures the writer, not
    # building Samples): the first is checked against sample_row so the two cannot drift apart.
    first = Sample(0, 1, 0, 100, 5.0, 0.25, 1.25, 4.998, 5.002, 0.26, 50, "ok")
    if _row(run, 0, T0) != sample_row(run, first, T0, T0):
        raise RuntimeError("bench: history rows no longer match the samples table's columns")
    for i in range(count):
        rows.append(_row(run, i, T0 + i * step))
        if len(rows) == 1000:
            write_batch(conn, Batch.of_rows(rows))
            rows = []
    write_batch(conn, Batch.of_rows(rows))
    took = time.perf_counter() - start
    conn.close()
    return count / took


def bench_history(group: Group, tmp: Path) -> None:
    count = int(HOURS * 3600 * RATE)
    db = tmp / "history.db"
    group.figures["samples"] = count
    group.figures["insert_rows_per_s"] = _fill(db, count)
    reader = open_for_reading(db)
    end = T0 + count / RATE
    for label, span in SPANS:
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            out = queries.history(reader, end - span, end, POINTS)
            times.append(time.perf_counter() - start)
        group.goal(
            f"{label} at {POINTS:,} points", statistics.median(times) * 1000, "<=", 100, "ms"
        )
        group.figures[f"{label} source"] = str(out["source"])
        group.figures[f"{label} buckets"] = len(out["t"])
    group.figures["db_mb"] = db.stat().st_size / 1e6
    reader.close()
