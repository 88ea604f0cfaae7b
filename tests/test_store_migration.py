"""A log written before the store named devices (schema 2) is upgraded in place by the first
command that opens it, for writing or for reading: every row of every table is kept, each as
the one device a run then had (`dut`), and the upgrade is all or nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.store import db as store_db
from harness.store import queries
from harness.store.db import open_for_reading, open_for_writing, schema_version
from harness.store.schema import MIGRATIONS, SCHEMA_VERSION

T0 = 1_800_000_000.0
TABLES = ("runs", "samples", "events", "rollups", "readbacks")


def schema_2_log(path: Path) -> None:
    """A log as the previous release writes it: its two migrations, WAL mode, and rows in its
    column layout (no device anywhere). Two runs: a finished one with a record, its samples
    over two boots, rollups, events and supply readbacks; and one killed before its end."""
    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.executescript(
        f"BEGIN; {MIGRATIONS[0]}; {MIGRATIONS[1]}; "
        "INSERT INTO meta (key, value) VALUES ('schema_version', '2'); COMMIT;"
    )
    record = {"verdict": "pass", "device": {"hello": {"fw": "1.0.0"}, "boots": [7, 8]}}
    with c:
        c.execute(
            "INSERT INTO runs (kind, scenario, target, seed, firmware, boots, started, ended, "
            "verdict, record) VALUES ('run', 'old', 'sim', 3, '1.0.0', '[7, 8]', ?, ?, 'pass', ?)",
            (T0, T0 + 400, json.dumps(record)),
        )
        c.execute(
            "INSERT INTO runs (kind, scenario, target, seed, started, ended, verdict) "
            "VALUES ('monitor', NULL, 'board', NULL, ?, ?, 'killed')",
            (T0 + 500, T0 + 530),
        )
        samples = []
        for run, boot, first, count, start in (
            (1, 7, 0, 1500, T0),
            (1, 8, 0, 1500, T0 + 150),
            (2, 8, 1500, 300, T0 + 500),
        ):
            for seq in range(first, first + count):
                t, v, n = start + (seq - first) / 10, 5 + seq / 1000, 0 if seq % 97 == 0 else 40
                status = "uv" if seq % 50 == 0 else "ok"
                means = (v, 0.25, 1.25, 4.9, 5.1, 0.3)
                samples.append((run, boot, seq, t, t + 0.01, seq * 100, 100, *means, n, status))
        c.executemany(f"INSERT INTO samples VALUES ({', '.join('?' * 15)})", samples)
        for width in (10, 60):
            c.execute(
                f"INSERT INTO rollups SELECT {width}, CAST(t / {width} AS INTEGER) * {width} AS b, "
                "run, count(*), sum(n), min(vmin), max(vmax), sum(v * n), min(a), max(amax), "
                "sum(a * n), min(w), max(w), sum(w * n), sum(w * dt) / 3.6e6, sum(a * dt) / 3.6e3 "
                "FROM samples GROUP BY b, run"
            )
        c.executemany(
            "INSERT INTO events (run, t, kind, data) VALUES (?, ?, ?, ?)",
            [(1, T0 + i, "log", json.dumps({"text": f"line {i}"})) for i in range(40)]
            + [(1, T0 + 150, "reset", "{}"), (2, T0 + 510, "alert", '{"status": "uv"}')]
            + [(None, T0 + 520, "store", '{"message": "x"}')],
        )
        c.executemany(
            "INSERT INTO readbacks VALUES (?, ?, ?, ?)",
            [(1, T0 + i / 5, 5.0 + i / 1e4, 0.25) for i in range(1000)],
        )
    c.close()


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows without the device column, in its old column order, sorted."""
    c = sqlite3.connect(path)
    out = {}
    for table in TABLES:
        names = [r[1] for r in c.execute(f"PRAGMA table_info({table})") if r[1] != "device"]
        out[table] = sorted(
            c.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall(),
            key=lambda row: tuple((x is None, x if x is not None else 0) for x in row),
        )
    c.close()
    return out


def sums(path: Path) -> tuple[Any, ...]:
    c = sqlite3.connect(path)
    (found,) = c.execute(
        "SELECT (SELECT sum(v * n) + sum(t) + sum(seq) FROM samples), "
        "(SELECT sum(wh) + sum(v_sum) FROM rollups), (SELECT sum(volts) FROM readbacks)"
    ).fetchall()
    c.close()
    return found


def db_info(path: Path) -> None:
    assert main(["db", "info", "--db", str(path)]) == 0


OPENERS: dict[str, Callable[[Path], object]] = {
    "for writing": lambda path: open_for_writing(path).close(),
    "for reading": lambda path: open_for_reading(path).close(),
    "by harness db info": db_info,
}


@pytest.mark.parametrize("how", OPENERS)
def test_a_schema_2_log_is_upgraded_and_keeps_every_row(tmp_path: Path, how: str) -> None:
    """The bar of issue 20's store: opened, migrated, every row kept."""
    db = tmp_path / "v2.db"
    schema_2_log(db)
    before, totals = rows(db), sums(db)
    assert [len(before[t]) for t in TABLES] == [2, 3300, 43, len(before["rollups"]), 1000]
    OPENERS[how](db)
    c = sqlite3.connect(db)
    assert schema_version(c) == SCHEMA_VERSION == 3
    assert rows(db) == before and sums(db) == totals
    for table in ("samples", "events", "rollups", "readbacks"):
        assert c.execute(f"SELECT DISTINCT device FROM {table}").fetchall() == [("dut",)]
    assert c.execute("SELECT run, name, target, port, firmware, boots FROM devices").fetchall() == [
        (1, "dut", "sim", None, "1.0.0", "[7, 8]"),
        (2, "dut", "board", None, None, None),
    ]
    c.close()


def test_an_upgraded_log_reads_as_before_and_takes_a_second_device(tmp_path: Path) -> None:
    """What the log showed before it was upgraded it shows after, device or no device; and a
    second device's sample with the same run, boot, seq and time as one of the old rows is kept
    beside it."""
    db = tmp_path / "v2.db"
    schema_2_log(db)
    old = sqlite3.connect(db)
    old_history = old.execute(
        "SELECT count(*), sum(n), min(v_min), max(v_max) FROM rollups WHERE width = 60"
    ).fetchone()
    old.close()
    conn = open_for_writing(db)
    for device in (None, "dut"):
        h = queries.history(conn, T0 - 60, T0 + 600, 10, device=device)
        assert h["source"] == "rollup_60" and sum(h["n"]) == old_history[1]
        assert (min(h["v_min"]), max(h["v_max"])) == old_history[2:]
    run = queries.run(conn, 1)
    assert run is not None and run["samples"]["count"] == 3000
    assert [
        (d["name"], d["firmware"], d["boots"], d["samples"]["count"]) for d in run["devices"]
    ] == [("dut", "1.0.0", [7, 8], 3000)]
    assert len(queries.events(conn, 1, device="dut")) == 41
    assert queries.events(conn, 1, device="other") == []
    (copied,) = conn.execute("SELECT * FROM samples WHERE run = 1 LIMIT 1").fetchall()
    with conn:
        conn.execute(f"INSERT INTO samples VALUES ({', '.join('?' * 16)})", (1, "b", *copied[2:]))
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 3301
    conn.close()


def test_a_big_upgrade_says_so_on_stderr_and_a_small_one_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    small, big = tmp_path / "small.db", tmp_path / "big.db"
    schema_2_log(small)
    schema_2_log(big)
    open_for_writing(small).close()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(store_db, "UPGRADE_SAID_ROWS", 3300)  # the log's sample rows
    open_for_writing(big).close()
    told = f"upgrading {big} to schema 3 (3,300 samples, every row kept) ...\n"
    assert capsys.readouterr().err == told


def test_an_upgrade_that_fails_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The upgrade and its version are one transaction: one that cannot finish (here a table
    in its way) leaves the log at schema 2 with every row, and says so in one line."""
    db = tmp_path / "v2.db"
    schema_2_log(db)
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE devices (x)")
    before = rows(db)
    assert main(["export", "--since", "1h", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{db}: cannot use the database")
    assert "already exists" in err
    c = sqlite3.connect(db)
    assert schema_version(c) == 2
    assert "device" not in {r[1] for r in c.execute("PRAGMA table_info(samples)")}
    c.close()
    assert rows(db) == before
