"""CSV export, streamed from a cursor so memory stays flat whatever the size: one run, a time
span, or one file per day (the seeds' daily backup); of every device, or of one (`device`)."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from harness.store.db import SAMPLE_COLUMNS

HEADER = (
    *SAMPLE_COLUMNS[:4],
    "time_utc",
    "t",
    "arrived",
    "ts_ms",
    "dt_ms",
    *SAMPLE_COLUMNS[8:],
    "supply_v",
    "supply_a",
)
"""The stored columns (run, device, boot, seq: what names a sample, first), with the time also
as ISO 8601 UTC and the device times' units named, then the bench supply's readback beside the
sample: the mean of the readbacks of the device's supply taken within the sample's span
(t - dt, t], empty when there is none (no supply, or none read in that span)."""
_READBACK = (
    "SELECT avg(r.{key}) FROM readbacks r WHERE r.t > s.t - s.dt / 1000.0 AND r.t <= s.t "
    "AND r.run = s.run AND r.device = s.device"
)
_SELECT = (
    f"SELECT {', '.join(f's.{c}' for c in SAMPLE_COLUMNS)}, "
    f"({_READBACK.format(key='volts')}), ({_READBACK.format(key='amps')}) FROM samples s"
)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rows(cursor: sqlite3.Cursor) -> Iterator[tuple[object, ...]]:
    for run, device, boot, seq, t, *rest, volts, amps in cursor:
        supply = ("" if volts is None else round(volts, 6), "" if amps is None else round(amps, 6))
        yield (run, device, boot, seq, iso(t), t, *rest, *supply)


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


def _device(device: str | None) -> tuple[str, tuple[str, ...]]:
    return ("", ()) if device is None else (" AND s.device = ?", (device,))


def export_run(conn: sqlite3.Connection, run: int, out: TextIO, device: str | None = None) -> int:
    t_from, t_to = run_span(conn, run)
    only, args = _device(device)
    cursor = conn.execute(
        f"{_SELECT} WHERE s.t >= ? AND s.t < ? AND s.run = ?{only} ORDER BY s.t",
        (t_from, t_to, run, *args),
    )
    return write_csv(cursor, out)


def export_span(
    conn: sqlite3.Connection, t_from: float, t_to: float, out: TextIO, device: str | None = None
) -> int:
    only, args = _device(device)
    cursor = conn.execute(
        f"{_SELECT} WHERE s.t >= ? AND s.t < ?{only} ORDER BY s.t", (t_from, t_to, *args)
    )
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
