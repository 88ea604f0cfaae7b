"""The 48-hour log: what lands, what is kept, what history and export give back, and what
happens when the database cannot be used."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from harness.cli import main
from harness.link import Sample
from harness.runner.bus import RunEvent, SampleEvent
from harness.runner.context import RunContext
from harness.store import queries
from harness.store.db import (
    SAMPLE_COLUMNS,
    Batch,
    create_run,
    finish_run,
    open_for_reading,
    open_for_writing,
    sample_row,
    schema_version,
    write_batch,
)
from harness.store.export import export_daily, export_run
from harness.store.schema import MIGRATIONS, SCHEMA_VERSION
from harness.store.writer import Retention, StoreWriter

WALL0 = 1_800_000_000.0  # 2027-01-15, a minute boundary


def sample(seq: int, v: float = 5.0, a: float = 0.25, n: int = 100, dt: int = 10_000) -> Sample:
    return Sample(seq, 1, (seq + 1) * dt, dt, v, a, v * a, v - 0.01, v + 0.01, a + 0.01, n, "ok")


def event(seq: int, dt: float = 10.0, **kw: float) -> SampleEvent:
    """The sample ends 5 s before a multiple of 10 s: never on a bucket's edge."""
    end = (seq + 1) * dt - 5
    return SampleEvent(sample(seq, dt=int(dt * 1000), **kw), end - dt, end, end)  # type: ignore[arg-type]


async def test_retention_keeps_48h_raw_and_30_days_of_minute_rollups(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # SQLite works in real time, in a thread: the clock jumps only after 2 ms of real time with
    # every task waiting, so virtual time does not run ahead of the writer.
    autojump_clock.autojump_threshold = 0.002
    conn = open_for_writing(tmp_path / "h.db")
    run = create_run(conn, "run", "soak", "mock", 0, WALL0)
    writer = StoreWriter(conn, run, WALL0, trio.current_time(), Retention(48 * 3600, 30 * 86400))
    hours = 50
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for chunk in range(hours * 6):  # a sample every 10 s of virtual time, 10 min at once
            for k in range(60):
                seq = chunk * 60 + k
                writer.take(event(seq, v=5.0 if seq % 2 else 4.0))
                writer.take(RunEvent("readback", seq * 10.0, {"volts": 5.0, "amps": 0.25}))
            await trio.sleep_until(writer.origin + (chunk + 1) * 600)
            while writer.pending_rows:
                await trio.sleep(0.05)  # half a batch window
        end = writer.wall()
        while (writer.retention_cutoff or 0) < end - 48 * 3600:  # a pass after the last sample
            await trio.sleep(10)
        cutoff = writer.retention_cutoff
        writer.close()
    assert cutoff is not None
    # Everything before the last pass's cutoff is gone; the first sample after it is kept.
    oldest = conn.execute("SELECT min(t) FROM samples").fetchone()[0]
    assert cutoff <= oldest < cutoff + 10
    oldest_readback = conn.execute("SELECT min(t) FROM readbacks").fetchone()[0]
    assert cutoff <= oldest_readback < cutoff + 10  # the supply's readbacks age alike
    oldest_10s = conn.execute("SELECT min(bucket) FROM rollups WHERE width = 10").fetchone()[0]
    assert cutoff - 10 <= oldest_10s < cutoff + 10
    minute = conn.execute("SELECT min(bucket), count(*) FROM rollups WHERE width = 60").fetchone()
    assert minute == (WALL0, hours * 60)  # all 50 hours of minutes are kept
    assert writer.rows_deleted > 0


async def test_minute_rollup_values(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    conn = open_for_writing(tmp_path / "r.db")
    run = create_run(conn, "run", "r", "mock", 0, WALL0)
    writer = StoreWriter(conn, run, WALL0, trio.current_time())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for seq in range(6):  # one minute: 6 samples of 10 s
            writer.take(event(seq, v=5.0 + seq, a=0.1 * (seq + 1), n=100))
        writer.take(RunEvent("alert", 5.0, {"status": "uv"}))
        writer.close()
    (row,) = conn.execute(
        "SELECT samples, n, v_min, v_max, v_sum / n, a_max, wh, mah FROM rollups WHERE width = 60"
    ).fetchall()
    samples, n, v_min, v_max, v_avg, a_max, wh, mah = row
    assert (samples, n) == (6, 600)
    assert (v_min, v_max) == (4.99, 10.01)
    assert v_avg == pytest.approx(7.5)
    assert a_max == pytest.approx(0.61)
    # energy: sum of v*a*10 s / 3600; charge: sum of a*10 s / 3.6
    assert wh == pytest.approx(sum((5 + k) * 0.1 * (k + 1) * 10 / 3600 for k in range(6)))
    assert mah == pytest.approx(sum(0.1 * (k + 1) * 10 / 3.6 for k in range(6)))
    assert conn.execute("SELECT kind FROM events").fetchall() == [("alert",)]


def test_history_plan_picks_the_table_and_bucket_width() -> None:
    day = 86400
    assert queries.plan(0, 2 * day, 2000) == queries.Plan(86.4, "rollup_60")
    assert queries.plan(0, 6 * 3600, 2000) == queries.Plan(10.8, "rollup_10")
    assert queries.plan(0, 600, 2000) == queries.Plan(0.3, "raw")
    for bad in ((10, 5, 100), (0, 10, 0), (0, 10, 10**6)):
        with pytest.raises(ValueError):
            queries.plan(*bad)


async def test_history_buckets_agree_between_raw_and_rollups(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    conn = open_for_writing(tmp_path / "b.db")
    run = create_run(conn, "run", "b", "mock", 0, WALL0)
    writer = StoreWriter(conn, run, WALL0, trio.current_time())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for seq in range(360):  # an hour of 10 s samples, v climbing 1 mV a sample
            writer.take(event(seq, v=5.0 + seq / 1000))
        writer.close()
    t0, t1 = WALL0, WALL0 + 3600
    raw = queries.history(conn, t0, t1, 600)  # 6 s buckets: raw
    coarse = queries.history(conn, t0, t1, 60)  # 60 s buckets: minute rollups
    assert raw["source"] == "raw" and coarse["source"] == "rollup_60"
    assert len(coarse["t"]) == 60 and coarse["t"][:2] == [t0, t0 + 60]
    # bucket k of the coarse answer holds the samples ending in [60k, 60k + 60): seqs 6k..6k+5
    assert coarse["v_max"][10] == pytest.approx(5.0 + 65 / 1000 + 0.01)
    assert coarse["v_min"][10] == pytest.approx(5.0 + 60 / 1000 - 0.01)
    assert coarse["v_avg"][10] == pytest.approx(5.0 + 62.5 / 1000)
    assert sum(coarse["n"]) == sum(raw["n"]) == 360 * 100
    assert min(raw["v_min"]) == min(coarse["v_min"]) and max(raw["v_max"]) == max(coarse["v_max"])


def test_export_round_trip_gives_back_the_rows(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    assert main(["run", "scenarios/brownout.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    conn = open_for_reading(db)
    out = io.StringIO()
    count = export_run(conn, 1, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    stored = conn.execute(
        "SELECT boot, seq, t, v, a, w, vmin, vmax, amax, n, status FROM samples ORDER BY seq"
    ).fetchall()
    assert count == len(rows) == len(stored) > 0
    for r, s in zip(rows, stored, strict=True):
        back = (
            int(r["boot"]),
            int(r["seq"]),
            float(r["t"]),
            *map(float, (r["v"], r["a"], r["w"], r["vmin"], r["vmax"], r["amax"])),
            int(r["n"]),
            r["status"],
        )
        assert back == s
    ((path, n),) = export_daily(conn, tmp_path / "daily")
    assert n == count and path.name.startswith("powerhil-")


def test_brownout_run_is_on_record(tmp_path: Path) -> None:
    """The issue's bar: the run with its verdict, every delivered sample once, the faults."""
    db, out = tmp_path / "t.db", tmp_path / "t.json"
    assert (
        main(
            [
                "run",
                "scenarios/brownout.toml",
                "--fast",
                "--no-view",
                "--db",
                str(db),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    import json

    rec = json.loads(out.read_text())
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT scenario, verdict FROM runs").fetchall() == [("brownout", "pass")]
    count, distinct = conn.execute("SELECT count(*), count(DISTINCT seq) FROM samples").fetchone()
    assert count == distinct == rec["link"]["delivered"]
    faults = conn.execute(
        "SELECT count(*) FROM events WHERE kind = 'fault' AND json_extract(data, '$.fault') IN ('drop', 'corrupt', 'reorder', 'duplicate')"
    ).fetchone()[0]
    assert faults == sum(rec["injected"].values()) > 0


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_locked_database_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "l.db"
    open_for_writing(db).close()
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(["run", "scenarios/clean.toml", "--fast", "--no-view", "--db", str(db)]) == 2
    finally:
        holder.rollback()
    assert "database is locked" in _one_line(capsys)


def _harness_as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as an unprivileged user (root could write a read-only file anyway)."""
    command = [sys.executable, "-m", "harness", *args]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=Path.cwd(), timeout=60)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the unprivileged user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="powerhil-ro-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_read_only_database_is_one_line_exit_2(shared_dir: Path) -> None:
    db = shared_dir / "ro.db"
    open_for_writing(db).close()
    db.chmod(0o444)
    done = _harness_as_nobody("run", "scenarios/clean.toml", "--fast", "--no-view", "--db", str(db))
    assert done.returncode == 2
    assert done.stderr == f"{db}: database is read-only; make it writable or use --db OTHER.db\n"


def test_read_only_folder_is_one_line_exit_2(shared_dir: Path) -> None:
    folder = shared_dir / "ro"
    folder.mkdir(mode=0o555)
    done = _harness_as_nobody(
        "run", "scenarios/clean.toml", "--fast", "--no-view", "--db", str(folder / "x.db")
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == f"{folder}: folder is read-only (SQLite needs to write its journal there); use --db OTHER.db\n"
    )


def test_corrupt_database_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    db.write_bytes(os.urandom(8192))
    assert main(["run", "scenarios/clean.toml", "--fast", "--no-view", "--db", str(db)]) == 2
    assert "not a usable SQLite database" in _one_line(capsys)
    assert main(["db", "info", "--db", str(db)]) == 2
    assert "not a usable SQLite database" in _one_line(capsys)


def test_database_from_another_program_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "other.db"
    sqlite3.connect(db).execute("CREATE TABLE x (y)")
    assert main(["run", "scenarios/clean.toml", "--fast", "--no-view", "--db", str(db)]) == 2
    assert "not a database made by powerhil" in _one_line(capsys)


def test_newer_schema_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "n.db"
    open_for_writing(db).close()
    with sqlite3.connect(db) as c:
        c.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert main(["run", "scenarios/clean.toml", "--fast", "--no-view", "--db", str(db)]) == 2
    assert "made by a newer powerhil" in _one_line(capsys)


def test_a_first_schema_log_gains_the_readbacks_table_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    with sqlite3.connect(db) as c:
        c.executescript(MIGRATIONS[0])
        c.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
        c.execute("INSERT INTO runs (kind, target, started) VALUES ('run', 'mock', 0)")
    conn = open_for_writing(db)
    assert schema_version(conn) == SCHEMA_VERSION == 3
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM readbacks").fetchone()[0] == 0
    assert conn.execute("SELECT run, name, target FROM devices").fetchall() == [(1, "dut", "mock")]


def test_a_first_schema_log_can_be_exported_and_read_after_an_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older powerhil's log is upgraded by the first command that reads it (export, db
    info, view), not only by a run; read-only, it says how to let it be upgraded."""
    db = tmp_path / "v1.db"
    with sqlite3.connect(db) as c:
        c.executescript(MIGRATIONS[0])
        c.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    with monkeypatch.context() as m:  # as a user without write access sees it (root has it)
        m.setattr("harness.store.db.os.access", lambda path, mode: mode != os.W_OK)
        assert main(["db", "info", "--db", str(db)]) == 2
        assert "make it writable once so it can be upgraded" in _one_line(capsys)
    assert main(["db", "info", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["export", "--since", "2h", "--db", str(db)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("supply_v,supply_a")
    assert schema_version(open_for_reading(db)) == SCHEMA_VERSION


async def test_database_error_mid_run_keeps_the_rows_and_reports(tmp_path: Path) -> None:
    """Real time: another program holds the database for 3 s (longer than the 2 s busy
    timeout). Writes fail, rows stay in memory, the problem is reported, and all rows land."""
    db = tmp_path / "m.db"
    conn = open_for_writing(db)
    run = create_run(conn, "run", "m", "mock", 0, WALL0)
    problems: list[str] = []
    writer = StoreWriter(conn, run, WALL0, trio.current_time(), on_problem=problems.append)
    holder = sqlite3.connect(db, check_same_thread=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for seq in range(10):
            writer.take(event(seq))
        await trio.sleep(0.3)
        holder.execute("BEGIN EXCLUSIVE")
        for seq in range(10, 60):
            writer.take(event(seq))
            await trio.sleep(0.05)
        await trio.sleep(0.5)
        holder.rollback()
        writer.close()
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 60
    assert problems[0].startswith("store: cannot write (database is locked)")
    assert problems[-1] == "store: writing again; nothing lost"


async def test_rows_given_up_on_are_counted_and_never_called_nothing_lost(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.store.writer as writer_module

    real_write = writer_module.write_batch
    fail = [True]

    def flaky(conn: sqlite3.Connection, batch: object) -> None:
        if fail[0]:
            raise sqlite3.OperationalError("disk I/O error")
        real_write(conn, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(writer_module, "write_batch", flaky)
    monkeypatch.setattr(writer_module, "BACKLOG_MAX", 5)
    conn = open_for_writing(tmp_path / "f.db")
    run = create_run(conn, "run", "f", "mock", 0, WALL0)
    problems: list[str] = []
    writer = StoreWriter(conn, run, WALL0, trio.current_time(), on_problem=problems.append)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for seq in range(40):
            writer.take(event(seq))
            # Each sample its own batch. The autojump clock may run on while the writer waits
            # for its thread, so wait for the batch itself rather than for a time.
            while writer.pending_rows > writer.backlog_rows:
                await trio.sleep(0.01)
        fail[0] = False
        writer.close()
    written = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    assert written + writer.rows_dropped == 40 and writer.rows_dropped > 0
    assert any("dropped the oldest" in p for p in problems)
    assert problems[-1] == f"store: writing again; {writer.rows_dropped} rows dropped"


def test_a_run_that_fails_to_start_is_recorded_as_an_error(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    args = [
        "run",
        "scenarios/clean.toml",
        "--target",
        "board",
        "--serial",
        "/dev/ttyNOPE0",
        "--no-view",
    ]
    assert main([*args, "--db", str(db)]) == 2
    ((verdict, ended),) = sqlite3.connect(db).execute("SELECT verdict, ended FROM runs").fetchall()
    assert verdict == "error" and ended is not None


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--run", "1", "--csv", "/nonexistent/x.csv"],
        ["export", "--daily", "/proc/no/such/folder"],
        ["export", "--run", "99"],
        ["bench", "--quick", "--json", "/nonexistent/b.json"],
    ],
    ids=["csv", "daily", "unknown-run", "bench-json"],
)
def test_bad_output_places_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    db = tmp_path / "x.db"
    assert main(["run", "scenarios/overcurrent.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    capsys.readouterr()
    with_db = args if args[0] == "bench" else [*args, "--db", str(db)]
    assert main(with_db) == 2
    err = _one_line(capsys)
    assert err.startswith(("/nonexistent", "/proc/no", "--run 99: no such run"))


KILL_SCENARIO = """\
[scenario]
name = "kill me"
duration = "60s"
[[step]]
at = "0s"
send = { cmd = "set_interval", value = 10 }
"""


def test_kill_9_loses_at_most_the_last_batch(tmp_path: Path) -> None:
    """A real run at 100 samples/s, killed with SIGKILL: the database is intact and holds a
    gap-free prefix of what was delivered, short by at most about one batch."""
    scenario = tmp_path / "kill.toml"
    scenario.write_text(KILL_SCENARIO)
    db = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--db", str(db), "--no-view"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        count = 0
        while count < 300:
            assert time.monotonic() < deadline, "the run wrote too little"
            time.sleep(0.1)
            if db.exists():
                try:
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                        count = c.execute("SELECT count(*) FROM samples").fetchone()[0]
                except sqlite3.OperationalError:
                    count = 0
        time.sleep(0.37)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    seqs = [s for (s,) in conn.execute("SELECT seq FROM samples ORDER BY seq")]
    assert seqs == list(range(len(seqs)))  # nothing missing in the middle, nothing twice
    (verdict,) = conn.execute("SELECT verdict FROM runs").fetchone()
    assert verdict is None  # it never ended
    newest = conn.execute("SELECT max(arrived) FROM samples").fetchone()[0]
    assert killed_at - newest < 0.5  # the last batch (100 ms) plus scheduling slack


@pytest.mark.parametrize("limit", [None, 32, 999])
def test_every_row_of_a_batch_lands_whatever_sqlite_allows_a_statement(
    tmp_path: Path, limit: int | None
) -> None:
    """Rows go in several to a statement: as many as the build of sqlite takes parameters for
    (15 columns a row), in fixed sizes; none is left out or written twice."""
    conn = open_for_writing(tmp_path / "log.db")
    if limit is not None:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    run = create_run(conn, "run", "x", "mock", 0, WALL0)
    rows = [sample_row(run, sample(i, v=5.0 + i / 1000), WALL0 + i, WALL0 + i) for i in range(1001)]
    for batch in (rows[:1], rows[1:78], rows[78:]):
        write_batch(conn, Batch.of_rows(batch))
    back = conn.execute(f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM samples ORDER BY seq").fetchall()
    assert back == rows
    conn.close()


def test_a_virtual_run_lies_in_the_past_where_export_finds_it(tmp_path: Path) -> None:
    """A --fast run of a minute is placed as if it had run in real time and ended when it was
    started: right after it, `export --since 1h` finds every sample, and none is in the future."""
    db = tmp_path / "h.db"
    out = tmp_path / "last.csv"
    before = time.time()
    assert main(["run", "scenarios/lossy-link.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    after = time.time()
    conn = sqlite3.connect(db)
    count, newest, oldest = conn.execute("SELECT count(*), max(t), min(t) FROM samples").fetchone()
    assert count > 50 and newest <= after and oldest >= before - 60 - 10
    (started, ended) = conn.execute("SELECT started, ended FROM runs").fetchone()
    assert started <= oldest and newest <= ended <= after
    assert main(["export", "--db", str(db), "--since", "1h", "--csv", str(out)]) == 0
    assert len(out.read_text().splitlines()) == count + 1


SOAK_SCENARIO = """\
[scenario]
name = "soak"
duration = "2h"
seed = 1
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
"""


def test_a_long_fast_run_waits_for_the_store_and_keeps_only_its_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 h in virtual time (a sample a second) with --retention 1h, and one write that stalls
    like a slow disk: until 2,000 more rows have come, or none has for a second. The run waits
    for the store: it never holds more than a batch of rows, retention acts on the run's own
    time through to its end, and the log keeps the last hour."""
    import harness.store.writer as writer_module
    from harness.runner.context import RunOptions, tap
    from harness.runner.run import run
    from harness.scenario.load import load
    from harness.store.recorder import recorder

    scenario_file = tmp_path / "soak.toml"
    scenario_file.write_text(SOAK_SCENARIO)
    db = tmp_path / "soak.db"
    seen: list[RunContext] = []
    taken = [0]
    most_pending = [0]

    def take(item: object) -> None:
        taken[0] += 1
        store = seen[0].store
        assert store is not None
        most_pending[0] = max(most_pending[0], store.pending_rows)

    real_write = writer_module.write_batch
    writes = [0]

    def stalls_once(conn: sqlite3.Connection, batch: Batch) -> None:
        writes[0] += 1
        if writes[0] == 20:
            start = last = taken[0]
            quiet_since = time.monotonic()
            while taken[0] - start < 2000 and time.monotonic() - quiet_since < 1.0:
                time.sleep(0.01)
                if taken[0] != last:
                    last, quiet_since = taken[0], time.monotonic()
        real_write(conn, batch)

    monkeypatch.setattr(writer_module, "write_batch", stalls_once)
    result = run(
        load(scenario_file),
        RunOptions(fast=True, out=io.StringIO()),
        (recorder(db, Retention(raw=3600.0)), tap(take, seen)),  # type: ignore[arg-type]
    )
    assert result.record.verdict == "pass" and writes[0] > 20
    assert most_pending[0] <= writer_module.BATCH_ROWS
    conn = sqlite3.connect(db)
    ((started, ended),) = conn.execute("SELECT started, ended FROM runs").fetchall()
    assert ended - started >= 2 * 3600
    oldest, newest, kept = conn.execute("SELECT min(t), max(t), count(*) FROM samples").fetchone()
    # Retention passes come a minute apart on the run's clock; the last one before the end
    # deleted everything an hour older than it.
    assert ended - 3600 - writer_module.RETENTION_EVERY - 10 <= oldest
    assert 3600 - 10 <= newest - oldest <= 3600 + writer_module.RETENTION_EVERY + 10
    assert kept <= 3600 + writer_module.RETENTION_EVERY + 10


def _samples_of(db: Path, run: int) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            return int(
                c.execute("SELECT count(*) FROM samples WHERE run = ?", (run,)).fetchone()[0]
            )
    except sqlite3.OperationalError:  # not made yet
        return 0


def _start_run(scenario: Path, db: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--db", str(db), "--no-view"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_samples(db: Path, run: int, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while _samples_of(db, run) < count:
        assert proc.poll() is None, "the run ended early"
        assert time.monotonic() < deadline, "the run wrote too little"
        time.sleep(0.1)


def test_a_killed_run_is_marked_killed_and_a_live_one_is_not(tmp_path: Path) -> None:
    """Two real runs on one log. A second run opening the log does not touch the first while
    its process lives; once that process is SIGKILLed, the next open for writing records it as
    killed, ended at its last sample, and leaves the run still going alone. The viewer's
    queries show an unheld run as killed before any writer opens the log again."""
    scenario = tmp_path / "kill.toml"
    scenario.write_text(KILL_SCENARIO)
    db = tmp_path / "k.db"
    first = _start_run(scenario, db)
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait_for_samples(db, 1, 50, first)
        second = _start_run(scenario, db)
        _wait_for_samples(db, 2, 50, second)
        with sqlite3.connect(db) as c:  # the second run's open left the first alone
            assert c.execute("SELECT verdict, ended FROM runs WHERE id = 1").fetchone() == (
                None,
                None,
            )
        first.kill()
        first.wait(10)
        conn = open_for_writing(db)
        last = conn.execute("SELECT max(t) FROM samples WHERE run = 1").fetchone()[0]
        runs = conn.execute("SELECT id, verdict, ended FROM runs ORDER BY id").fetchall()
        assert runs == [(1, "killed", last), (2, None, None)]
        conn.close()
        second.kill()
        second.wait(10)
        reader = open_for_reading(db)
        listed = {r["id"]: r["verdict"] for r in queries.runs(reader)}
        one = queries.run(reader, 2)
        assert listed == {1: "killed", 2: "killed"}
        assert one is not None and one["verdict"] == "killed"
        assert one["ended"] == one["samples"]["last"] is not None
        reader.close()
        open_for_writing(db).close()
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT verdict FROM runs WHERE id = 2").fetchone() == ("killed",)
        assert list((tmp_path / "k.db-runs").iterdir()) == []  # no lock file left behind
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_runs_an_older_log_left_running_are_closed_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    """A log from before runs were held: three runs with no verdict, one with samples, one with
    events only, one with neither, and a finished one. Opening it for writing ends each of the
    three where it was last heard of and keeps every row; a run this process holds stays open."""
    db = tmp_path / "old.db"
    conn = open_for_writing(db)
    insert = (
        "INSERT INTO runs (kind, scenario, target, seed, started) VALUES ('run', ?, 'mock', 0, ?)"
    )
    with conn:
        for name, at in (("samples", WALL0), ("events", WALL0 + 1000), ("none", WALL0 + 2000)):
            conn.execute(insert, (name, at))
        conn.execute(
            insert.replace("started)", "started, ended, verdict)").replace("?)", "?, ?, 'pass')"),
            ("done", WALL0 + 3000, WALL0 + 3100),
        )
    rows = [sample_row(1, sample(i), WALL0 + 10 * i + 5, WALL0 + 10 * i + 5) for i in range(30)]
    batch = Batch.of_rows(rows)
    batch.events = [(1, "dut", WALL0 + 100, "log", "{}"), (2, "dut", WALL0 + 1500, "alert", "{}")]
    write_batch(conn, batch)
    conn.close()
    before = {
        table: sqlite3.connect(db).execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("samples", "events", "rollups")
    }
    conn = open_for_writing(db)
    held = create_run(conn, "run", "held", "mock", 0, WALL0 + 4000)
    conn.close()
    conn = open_for_writing(db)
    assert conn.execute("SELECT scenario, verdict, ended FROM runs ORDER BY id").fetchall() == [
        ("samples", "killed", WALL0 + 295),
        ("events", "killed", WALL0 + 1500),
        ("none", "killed", WALL0 + 2000),
        ("done", "pass", WALL0 + 3100),
        ("held", None, None),
    ]
    after = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("samples", "events", "rollups")
    }
    assert after == before
    finish_run(conn, held, WALL0 + 4100, "pass", {})
    assert conn.execute("SELECT verdict FROM runs WHERE id = ?", (held,)).fetchone() == ("pass",)
