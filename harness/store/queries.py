"""Reading the log: history at any zoom, runs, one run and its events. Each call takes its own
(read-only) connection's cursor; nothing here writes. A `device` of None reads every device's
rows (a single-device run has one, `dut`); a name, that device's only."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from harness.store import runlocks
from harness.store.db import last_seen, rows_to_dicts
from harness.store.export import run_span

MAX_POINTS = 10_000
COLUMNS = (
    "t",
    "n",
    "v_min",
    "v_avg",
    "v_max",
    "a_min",
    "a_avg",
    "a_max",
    "w_min",
    "w_avg",
    "w_max",
)


@dataclass(frozen=True, slots=True)
class Plan:
    """How a history request is answered: bucket width and the table read."""

    width: float
    source: str
    """"rollup_60", "rollup_10" or "raw"."""


def plan(t_from: float, t_to: float, points: int) -> Plan:
    """Buckets of (to - from) / points seconds, read from the coarsest table that is still finer
    than a bucket: one-minute rollups, 10-second rollups, or the raw samples."""
    if not (math.isfinite(t_from) and math.isfinite(t_to)) or t_to <= t_from:
        raise ValueError("to must be after from")
    if not 1 <= points <= MAX_POINTS:
        raise ValueError(f"points must be 1..{MAX_POINTS}")
    width = (t_to - t_from) / points
    source = "rollup_60" if width >= 60 else "rollup_10" if width >= 10 else "raw"
    return Plan(width, source)


_RAW = """
SELECT CAST((t - :from) / :width AS INTEGER) AS k, sum(n),
       min(vmin), sum(v * n) / nullif(sum(n), 0), max(vmax),
       min(a), sum(a * n) / nullif(sum(n), 0), max(amax),
       min(w), sum(w * n) / nullif(sum(n), 0), max(w)
FROM samples
WHERE t >= :from AND t < :to AND n > 0 {only}
GROUP BY k ORDER BY k
"""
_ROLLUP = """
SELECT CAST((bucket - :from) / :width AS INTEGER) AS k, sum(n),
       min(v_min), sum(v_sum) / nullif(sum(n), 0), max(v_max),
       min(a_min), sum(a_sum) / nullif(sum(n), 0), max(a_max),
       min(w_min), sum(w_sum) / nullif(sum(n), 0), max(w_max)
FROM rollups
WHERE width = :rollup AND bucket >= :from AND bucket < :to AND n > 0 {only}
GROUP BY k ORDER BY k
"""


def _only(run: int | None, device: str | None) -> str:
    """The filter of a run and a device (None: any) on a table with `run` and `device`."""
    return ("AND run = :run " if run is not None else "") + (
        "AND device = :device" if device is not None else ""
    )


def history(
    conn: sqlite3.Connection,
    t_from: float,
    t_to: float,
    points: int,
    run: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Min/avg/max of v, a, w per bucket, column-wise (as charts want them), of one run's or
    every run's samples, of one device's or every device's. A bucket's `t` is its start; empty
    buckets are left out."""
    p = plan(t_from, t_to, points)
    args: dict[str, Any] = {
        "from": t_from,
        "to": t_to,
        "width": p.width,
        "run": run,
        "device": device,
    }
    if p.source == "raw":
        sql = _RAW.format(only=_only(run, device))
    else:
        args["rollup"] = 60 if p.source == "rollup_60" else 10
        sql = _ROLLUP.format(only=_only(run, device))
    out: dict[str, Any] = {name: [] for name in COLUMNS}
    for k, *values in conn.execute(sql, args):
        out["t"].append(round(t_from + k * p.width, 3))
        for name, value in zip(COLUMNS[1:], values, strict=True):
            out[name].append(value)
    out.update({"from": t_from, "to": t_to, "points": points, "width": p.width, "source": p.source})
    return out


def _unheld_is_killed(conn: sqlite3.Connection, r: dict[str, Any]) -> None:
    """A run without a verdict that no process holds was killed: it is shown as the next open
    for writing will record it (verdict `killed`, ended at its last sample), so a reader sees
    it so before any run opens the log again. The row is read again once the lock is found
    free: a run that ended since it was read has committed its end before letting go."""
    if r["verdict"] is not None or runlocks.is_held(conn, r["id"]):
        return
    r["verdict"], r["ended"] = conn.execute(
        "SELECT verdict, ended FROM runs WHERE id = ?", (r["id"],)
    ).fetchone()
    if r["verdict"] is None:
        r["verdict"] = "killed"
        r["ended"] = last_seen(conn, r["id"], r["started"])


def runs(conn: sqlite3.Connection, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT id, kind, scenario, target, seed, firmware, boots, started, ended, verdict "
        "FROM runs ORDER BY id DESC LIMIT ? OFFSET ?",
        (limit, offset),
    )
    out = list(rows_to_dicts(cur))
    for r in out:
        r["boots"] = json.loads(r["boots"]) if r["boots"] else []
        _unheld_is_killed(conn, r)
    return out


def run(conn: sqlite3.Connection, run_id: int) -> dict[str, Any] | None:
    cur = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
    found = list(rows_to_dicts(cur))
    if not found:
        return None
    r = found[0]
    r["boots"] = json.loads(r["boots"]) if r["boots"] else []
    r["record"] = json.loads(r["record"]) if r["record"] else None
    _unheld_is_killed(conn, r)
    t_from, t_to = run_span(conn, run_id)
    by_device = {
        name: {"count": count, "first": first, "last": last}
        for name, first, last, count in conn.execute(
            "SELECT device, min(t), max(t), count(*) FROM samples "
            "WHERE t >= ? AND t < ? AND run = ? GROUP BY device",
            (t_from, t_to, run_id),
        )
    }
    firsts = [s["first"] for s in by_device.values()]
    lasts = [s["last"] for s in by_device.values()]
    r["samples"] = {
        "count": sum(s["count"] for s in by_device.values()),
        "first": min(firsts) if firsts else None,
        "last": max(lasts) if lasts else None,
    }
    cur = conn.execute(
        "SELECT name, target, port, firmware, boots FROM devices WHERE run = ? ORDER BY name",
        (run_id,),
    )
    r["devices"] = list(rows_to_dicts(cur))
    for d in r["devices"]:
        d["boots"] = json.loads(d["boots"]) if d["boots"] else []
        d["samples"] = by_device.get(d["name"], {"count": 0, "first": None, "last": None})
    return r


def device_names(conn: sqlite3.Connection, run: int | None = None) -> list[str]:
    """The names of one run's devices, or of every device in the log, sorted."""
    if run is None:
        cur = conn.execute("SELECT DISTINCT name FROM devices ORDER BY name")
    else:
        cur = conn.execute("SELECT name FROM devices WHERE run = ? ORDER BY name", (run,))
    return [name for (name,) in cur]


def unknown_device(
    conn: sqlite3.Connection, device: str, run: int | None = None, log: str = "the log"
) -> str | None:
    """None if the log (or the run) has `device`, else what to tell: which devices it has."""
    names = device_names(conn, run)
    if device in names:
        return None
    where = log if run is None else f"run {run} of {log}"
    has = ", ".join(names) if names else "none"
    return f"{where} has no such device (it has: {has})"


def events(
    conn: sqlite3.Connection,
    run_id: int,
    kinds: tuple[str, ...] = (),
    limit: int = 1000,
    after: int = 0,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """A run's events in time order; `after` is the last id already seen (for paging)."""
    sql = "SELECT id, device, t, kind, data FROM events WHERE run = ? AND id > ?"
    args: list[Any] = [run_id, after]
    if device is not None:
        sql += " AND device = ?"
        args.append(device)
    if kinds:
        sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
        args.extend(kinds)
    sql += " ORDER BY id LIMIT ?"
    args.append(limit)
    out = list(rows_to_dicts(conn.execute(sql, args)))
    for e in out:
        e["data"] = json.loads(e["data"])
    return out


def verdict_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Runs by verdict; a run without one is `running` while its process holds it, else
    `killed` (as `runs` shows it)."""
    counts: dict[str, int] = dict(
        conn.execute(
            "SELECT verdict, count(*) FROM runs WHERE verdict IS NOT NULL GROUP BY verdict"
        ).fetchall()
    )
    open_runs = conn.execute("SELECT id, started FROM runs WHERE verdict IS NULL").fetchall()
    for run_id, started in open_runs:
        r: dict[str, Any] = {"id": run_id, "verdict": None, "started": started}
        _unheld_is_killed(conn, r)
        verdict = r["verdict"] or "running"
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def readbacks(
    conn: sqlite3.Connection,
    run_id: int,
    t_from: float,
    t_to: float,
    points: int,
    device: str | None = None,
) -> dict[str, list[float]]:
    """The bench supply's readbacks of a run (of one device's supply, or of all), as the means
    of buckets of (to - from) / points seconds (`t` a bucket's start), column-wise; empty
    buckets are left out."""
    width = plan(t_from, t_to, points).width
    out: dict[str, list[float]] = {"t": [], "volts": [], "amps": []}
    cur = conn.execute(
        "SELECT CAST((t - :from) / :width AS INTEGER) AS k, avg(volts), avg(amps) FROM readbacks "
        f"WHERE t >= :from AND t < :to {_only(run_id, device)} GROUP BY k ORDER BY k",
        {"from": t_from, "to": t_to, "width": width, "run": run_id, "device": device},
    )
    for k, volts, amps in cur:
        out["t"].append(round(t_from + k * width, 3))
        out["volts"].append(volts)
        out["amps"].append(amps)
    return out


def some_events(
    conn: sqlite3.Connection, run_id: int, kinds: tuple[str, ...], limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A run's first `limit` events of `kinds` and of a port's unplugging and replugging (a
    `fault` whose `what` is `port`), in time order, and how many there are in all."""
    where = (
        f"run = ? AND (kind IN ({', '.join('?' * len(kinds))}) "
        "OR (kind = 'fault' AND json_extract(data, '$.what') = 'port'))"
    )
    args = [run_id, *kinds]
    (total,) = conn.execute(f"SELECT count(*) FROM events WHERE {where}", args).fetchone()
    cur = conn.execute(
        f"SELECT t, kind, data, device FROM events WHERE {where} ORDER BY t, id LIMIT ?",
        [*args, limit],
    )
    found = [
        {"t": t, "kind": kind, "data": json.loads(data), "device": device}
        for t, kind, data, device in cur
    ]
    return found, total
