"""A logged run's HTML report (GET /api/runs/<id>/report.html): the same report `harness run
--html` writes, made from the log's rows for the run — its record, its history at the report's
resolution, its supply readbacks and its first events. A run without a record (running,
killed, or ended on an error) gets a report of what the log holds of it (its samples, its
chart, its events) that says the rest is unknown."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from harness.report.data import (
    EVENT_KINDS,
    EVENTS_SHOWN,
    Chart,
    Unrecorded,
    report_data,
    unrecorded_data,
)
from harness.report.envelope import BUCKETS, ENVELOPE
from harness.report.render import UPlot, render
from harness.store import queries


def _unrecorded(row: dict[str, Any], origin: float) -> Unrecorded:
    """What the log holds of a run without a record (running, killed, or ended on an error)."""
    samples = row["samples"]
    return Unrecorded(
        name=row["scenario"] or row["kind"],
        target=row["target"],
        seed=row["seed"],
        started=datetime.fromtimestamp(row["started"], UTC).isoformat(timespec="seconds"),
        verdict=row["verdict"] or "running",
        samples=samples["count"],
        first=None if samples["first"] is None else samples["first"] - origin,
        last=None if samples["last"] is None else samples["last"] - origin,
    )


def _chart(
    conn: sqlite3.Connection, run_id: int, origin: float, end: float, device: str | None
) -> Chart:
    """A run's envelope and readbacks at the report's resolution, in scenario seconds: of one
    device, or of all (None)."""
    history = queries.history(conn, origin, end, BUCKETS, run_id, device)
    chart = {name: history[name] for name in ("t", "n", *ENVELOPE)}
    chart["t"] = [round(t - origin, 6) for t in chart["t"]]
    readback = queries.readbacks(conn, run_id, origin, end, BUCKETS, device)
    readback["t"] = [round(t - origin, 6) for t in readback["t"]]
    return chart, readback


def report_html(conn: sqlite3.Connection, run_id: int, uplot: UPlot) -> str | None:
    """The report of run `run_id` in the log (None: no such run). Blocking: the viewer calls it
    in a worker thread, on a read-only connection."""
    row = queries.run(conn, run_id)
    if row is None:
        return None
    origin = row["started"]
    """Unix seconds of the run's scenario second 0 (the store's `started`, see ctx.wall0)."""
    last = row["samples"]["last"]
    end = max(origin + 1.0, row["ended"] or 0.0, last or 0.0) + 1.0
    chart, readback = _chart(conn, run_id, origin, end, None)
    found, total = queries.some_events(conn, run_id, EVENT_KINDS, EVENTS_SHOWN)
    events = [
        {"at": e["t"] - origin, "kind": e["kind"], "data": e["data"], "device": e["device"]}
        for e in found
    ]
    source = f"the log, run {run_id}"
    if row["record"]:
        record = dict(row["record"], verdict=row["verdict"] or row["record"]["verdict"])
        parts = record.get("devices") or []
        charts = None
        if len(parts) > 1:  # each device's chart in its section
            charts = {p["name"]: _chart(conn, run_id, origin, end, p["name"]) for p in parts}
        data = report_data(record, chart, readback, events, total, source, charts)
    else:
        data = unrecorded_data(_unrecorded(row, origin), chart, readback, events, total, source)
    return render(data, uplot)
