"""CSV export, streamed from a cursor so memory stays flat whatever the size: one run, a time
span, or one file per day (the seeds' daily backup)."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from harness.store.db import SAMPLE_COLUMNS

HEADER = (*SAMPLE_COLUMNS[:3], "time_utc", "t", "arrived", "ts_ms", "dt_ms", *SAMPLE_COLUMNS[7:])
"""The stored columns, with the time also as ISO 8601 UTC and the device times' units named."""
_SELECT = f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM samples"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rows(cursor: sqlite3.Cursor) -> Iterator[tuple[object, ...]]:
    for run, boot, seq, t, *rest in cursor:
        yield (run, boot, seq, iso(t), t, *rest)


def write_csv(cursor: sqlite3.Cursor, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for row in _rows(cursor):
        writer.writerow(row)
        count += 1
    return count


def run_span(conn: sqlite3.Connection, run: int) -> tuple[float, float]:
    """The time span of a run's samples: they lie between its start and its end (or now)."""
    row = conn.execute(
        "SELECT started, coalesce(ended, 1e18) FROM runs WHERE id = ?", (run,)
    ).fetchone()
    return (row[0], row[1] + 60.0) if row else (0.0, 0.0)


def export_run(conn: sqlite3.Connection, run: int, out: TextIO) -> int:
    t_from, t_to = run_span(conn, run)
    cursor = conn.execute(
        f"{_SELECT} WHERE t >= ? AND t < ? AND run = ? ORDER BY t", (t_from, t_to, run)
    )
    return write_csv(cursor, out)


def export_span(conn: sqlite3.Connection, t_from: float, t_to: float, out: TextIO) -> int:
    cursor = conn.execute(f"{_SELECT} WHERE t >= ? AND t < ? ORDER BY t", (t_from, t_to))
    return write_csv(cursor, out)


def export_daily(conn: sqlite3.Connection, folder: Path) -> list[tuple[Path, int]]:
    """One CSV per UTC day that has samples: powerhil-YYYY-MM-DD.csv (rewritten if present)."""
    first, last = conn.execute("SELECT min(t), max(t) FROM samples").fetchone()
    if first is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    day = datetime.fromtimestamp(first, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = datetime.fromtimestamp(last, UTC)
    written: list[tuple[Path, int]] = []
    while day <= end:
        nxt = day + timedelta(days=1)
        path = folder / f"powerhil-{day:%Y-%m-%d}.csv"
        tmp = path.with_suffix(".csv.part")
        with tmp.open("w", newline="") as f:
            count = export_span(conn, day.timestamp(), nxt.timestamp(), f)
        if count:
            tmp.replace(path)
            written.append((path, count))
        else:
            tmp.unlink()
        day = nxt
    return written
