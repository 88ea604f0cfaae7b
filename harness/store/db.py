"""Opening, checking and writing the database (blocking sqlite3: call it from a worker thread).

A database the user cannot use (locked, read-only, corrupt, made by a newer version, in a
folder that cannot be created) is one line naming the file and what to do, raised as
UserError when the run starts, before any data is taken.

Opening for writing also closes the runs that no process holds any more (see `runlocks`): a
run killed before it could record its end gets the verdict `killed`, ended at its last sample.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.link import Sample
from harness.scenario.model import DEFAULT_DEVICE
from harness.store import runlocks
from harness.store.rollup import rollup_rows
from harness.store.schema import MIGRATIONS, ROLLUP_WIDTHS, SCHEMA_VERSION

BUSY_TIMEOUT_S = 2.0
WRITER_CACHE_KIB = 128
"""The writer's page cache (SQLite's default is 2,000 KiB), held as long as the run lasts: it
appends at the right edge of each B-tree and deletes a few thousand rows at the left, so a
batch's own pages and the paths to them are most of what it rereads; a page it no longer holds
comes back from the OS's cache (docs/performance.md)."""
SAMPLE_COLUMNS = (
    "run",
    "device",
    "boot",
    "seq",
    "t",
    "arrived",
    "ts",
    "dt",
    "v",
    "a",
    "w",
    "vmin",
    "vmax",
    "amax",
    "n",
    "status",
)
ROLLUP_MERGE = """
INSERT INTO rollups (width, bucket, run, device, samples, n, v_min, v_max, v_sum, a_min, a_max,
                     a_sum, w_min, w_max, w_sum, wh, mah)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (width, bucket, run, device) DO UPDATE SET
    samples = samples + excluded.samples,
    n = n + excluded.n,
    {extremes},
    v_sum = v_sum + excluded.v_sum,
    a_sum = a_sum + excluded.a_sum,
    w_sum = w_sum + excluded.w_sum,
    wh = wh + excluded.wh,
    mah = mah + excluded.mah
""".format(
    extremes=",\n    ".join(
        f"{c} = coalesce({fn}({c}, excluded.{c}), {c}, excluded.{c})"
        for c, fn in (
            ("v_min", "min"),
            ("v_max", "max"),
            ("a_min", "min"),
            ("a_max", "max"),
            ("w_min", "min"),
            ("w_max", "max"),
        )
    )
)


def sample_row(
    run: int, s: Sample, t: float, arrived: float, device: str = DEFAULT_DEVICE
) -> tuple[Any, ...]:
    """A sample of `device` as a `samples` row, in SAMPLE_COLUMNS order (t, arrived: unix
    seconds)."""
    seq, boot, ts, dt, v, a, w, vmin, vmax, amax, n, status = s  # one unpack, not 12 lookups
    return (run, device, boot, seq, t, arrived, ts, dt, v, a, w, vmin, vmax, amax, n, status)


def _user_error(path: Path, exc: sqlite3.Error) -> UserError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return UserError(
            f"{path}: database is locked by another program (another harness writing to it?); wait for it or use --db OTHER.db"
        )
    if "readonly" in text or "read-only" in text:
        return UserError(f"{path}: database is read-only; make it writable or use --db OTHER.db")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return UserError(
            f"{path}: not a usable SQLite database ({text}); move it aside or use --db OTHER.db"
        )
    return UserError(f"{path}: cannot use the database: {text}")


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the project's settings. Readers pass readonly=True."""
    if readonly:
        uri = f"file:{path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def open_for_writing(path: Path) -> sqlite3.Connection:
    """Create or open the database, migrate it, prove it can be written now, and mark the runs
    no process holds as killed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"{path.parent}: cannot create the folder for the database: {exc.strerror}"
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{path}: database is read-only; make it writable or use --db OTHER.db")
    if not os.access(path.parent, os.W_OK):
        raise UserError(
            f"{path.parent}: folder is read-only (SQLite needs to write its journal there); use --db OTHER.db"
        )
    conn = None
    try:
        conn = connect(path)
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise UserError(
                f"{path}: cannot switch the database to WAL mode (got {mode}); is it on a network drive?"
            )
        migrate(conn, path)
        mark_killed(conn)
        return conn
    except (sqlite3.Error, UserError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, UserError):
            raise
        raise _user_error(path, exc) from None


def open_for_reading(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise UserError(f"{path}: no such database (a run creates it; see --db)")
    try:
        conn = connect(path, readonly=True)
        version = schema_version(conn)
    except sqlite3.Error as exc:
        raise _user_error(path, exc) from None
    if 0 < version < SCHEMA_VERSION:  # an older powerhil's log: upgraded in place, data kept
        conn.close()
        _upgrade(path, version)
        return open_for_reading(path)
    if version > SCHEMA_VERSION:
        conn.close()
        raise UserError(
            f"{path}: made by a newer powerhil (schema {version}, this one knows {SCHEMA_VERSION}); upgrade powerhil"
        )
    if version != SCHEMA_VERSION:
        conn.close()
        raise UserError(
            f"{path}: schema version {version}, this powerhil reads {SCHEMA_VERSION}; open it with a matching powerhil"
        )
    return conn


def _upgrade(path: Path, version: int) -> None:
    """Migrate an older schema for a reader, keeping every row."""
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise UserError(
            f"{path}: schema version {version} is older than this powerhil's {SCHEMA_VERSION} and "
            "the file (or its folder) is read-only: make it writable once so it can be upgraded "
            "(its data is kept)"
        )
    conn = None
    try:
        conn = connect(path)
        migrate(conn, path)
    except sqlite3.Error as exc:
        raise _user_error(path, exc) from None
    finally:
        if conn is not None:
            conn.close()


def schema_version(conn: sqlite3.Connection) -> int:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise sqlite3.DatabaseError("not a database made by powerhil (no meta table)")
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration script, one at a time (a `;` in a comment or a string
    ends none)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        raise ValueError(f"unfinished SQL statement in a migration: {pending.strip()[:60]}")


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Run the missing migrations and record the version, all in one transaction: a log is
    upgraded completely or not at all. The version is read again under the write lock, so a
    process that waited for another one's upgrade finds it done."""
    version = schema_version(conn)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise UserError(
            f"{path}: made by a newer powerhil (schema {version}, this one knows {SCHEMA_VERSION}); upgrade powerhil"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)
        rebuilt = _rebuilds(conn, version) if version else 0
        if rebuilt >= UPGRADE_SAID_ROWS:
            print(
                f"upgrading {path} to schema {SCHEMA_VERSION} ({rebuilt:,} samples, every row "
                "kept) ...",
                file=sys.stderr,
                flush=True,
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(number),),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
            conn.execute("ROLLBACK")
        raise


UPGRADE_SAID_ROWS = 200_000
"""An upgrade that rebuilds at least this many sample rows says so on stderr first: it takes
seconds for a full log (docs/performance.md), a small one passes unnoticed."""


def _rebuilds(conn: sqlite3.Connection, version: int) -> int:
    """About how many sample rows the migrations from `version` rebuild: schema 3 rebuilds the
    samples table. Read from the 10 s rollups (a row per bucket, not per sample)."""
    if version >= 3:
        return 0
    (rows,) = conn.execute(
        "SELECT coalesce(sum(samples), 0) FROM rollups WHERE width = ?", (ROLLUP_WIDTHS[0],)
    ).fetchone()
    return int(rows)


# --- writes (one transaction each) -------------------------------------------------------


def create_run(
    conn: sqlite3.Connection,
    kind: str,
    scenario: str | None,
    target: str,
    seed: int | None,
    started: float,
    device: str = DEFAULT_DEVICE,
    port: str | None = None,
    device_target: str | None = None,
) -> int:
    """The new run's id, with its (first) device, on `device_target` (default: `target`, the
    run's) and `port` (the serial port it was given, if any). This process holds the run
    (runlocks) until `finish_run` records its end, or until the process dies."""
    with conn:  # the row and its hold in one transaction: no opener sees the row unheld
        cur = conn.execute(
            "INSERT INTO runs (kind, scenario, target, seed, started) VALUES (?, ?, ?, ?, ?)",
            (kind, scenario, target, seed, started),
        )
        assert cur.lastrowid is not None
        _insert_device(conn, cur.lastrowid, device, device_target or target, port)
        runlocks.hold(conn, cur.lastrowid)
    return cur.lastrowid


def add_device(
    conn: sqlite3.Connection, run: int, name: str, target: str, port: str | None = None
) -> None:
    """Name one more device of a run (`create_run` names its first)."""
    with conn:
        _insert_device(conn, run, name, target, port)


def _insert_device(
    conn: sqlite3.Connection, run: int, name: str, target: str, port: str | None
) -> None:
    conn.execute(
        "INSERT INTO devices (run, name, target, port) VALUES (?, ?, ?, ?)",
        (run, name, target, port),
    )


def finish_run(
    conn: sqlite3.Connection,
    run: int,
    ended: float,
    verdict: str,
    record: dict[str, Any],
    device: str = DEFAULT_DEVICE,
) -> None:
    """Record the run's end, and each device's firmware and boots from the record (its
    `devices` sections; a record without them: `device`'s, from its `device`)."""
    sections = record.get("devices") or [{"name": device, "device": record.get("device")}]
    found = [(s["name"], *_firmware_and_boots(s.get("device"))) for s in sections]
    _, firmware, boots = found[0]
    with conn:
        conn.execute(
            "UPDATE runs SET ended = ?, verdict = ?, firmware = ?, boots = ?, record = ? WHERE id = ?",
            (ended, verdict, firmware, boots, json.dumps(record, default=str), run),
        )
        conn.executemany(
            "UPDATE devices SET firmware = ?, boots = ? WHERE run = ? AND name = ?",
            [(fw, b, run, name) for name, fw, b in found],
        )
    runlocks.release(conn, run)


def _firmware_and_boots(info: dict[str, Any] | None) -> tuple[str | None, str]:
    """A record's device section: its firmware (from its hello) and its boots, as JSON."""
    hello = (info or {}).get("hello") or {}
    return hello.get("fw"), json.dumps((info or {}).get("boots", []))


def last_seen(conn: sqlite3.Connection, run: int, started: float) -> float:
    """When a run was last heard of: its last sample's time, else its last event's, else its
    start. The last sample is in the run's last 10 s rollup bucket (rollups are written in the
    same transaction as their samples), so this reads one bucket of samples, not the table."""
    width = ROLLUP_WIDTHS[0]
    row = conn.execute(
        "SELECT bucket FROM rollups WHERE width = ? AND run = ? ORDER BY bucket DESC LIMIT 1",
        (width, run),
    ).fetchone()
    if row is not None:
        (last,) = conn.execute(
            "SELECT max(t) FROM samples WHERE t >= ? AND t < ? AND run = ?",
            (row[0], row[0] + width, run),
        ).fetchone()
        if last is not None:
            return float(last)
    (last,) = conn.execute("SELECT max(t) FROM events WHERE run = ?", (run,)).fetchone()
    return started if last is None else float(last)


def mark_killed(conn: sqlite3.Connection) -> list[int]:
    """Give every run without a verdict that no process holds the verdict `killed` and its
    last sample's time as its end; returns their ids. One write transaction, taken first: a
    run's end is committed before its process lets go of it, so while this holds the write
    lock, a run with no verdict is either held or will never be finished by anyone."""
    conn.execute("BEGIN IMMEDIATE")
    killed = []
    try:
        for run, started in conn.execute(
            "SELECT id, started FROM runs WHERE verdict IS NULL"
        ).fetchall():
            if not runlocks.is_held(conn, run):
                conn.execute(
                    "UPDATE runs SET verdict = 'killed', ended = ? WHERE id = ?",
                    (last_seen(conn, run, started), run),
                )
                killed.append(run)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for run in killed:
        runlocks.forget(conn, run)
    return killed


ROW_VALUES = len(SAMPLE_COLUMNS)


def flat(rows: Iterable[Sequence[Any]]) -> list[Any]:
    """Sample rows as one flat list of values, a row after another (what a Batch holds)."""
    return list(itertools.chain.from_iterable(rows))


def rows_of(values: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of a flat list of sample values."""
    it = iter(values)
    return zip(*[it] * ROW_VALUES, strict=True)


@dataclass(slots=True)
class Batch:
    samples: list[Any]
    """Sample rows flat: ROW_VALUES values a row in SAMPLE_COLUMNS order, row after row. The
    writer holds thousands while the link is busy; as a tuple each, every one is an object the
    garbage collector walks."""
    events: list[tuple[Any, ...]]
    """(run, device, t, kind, data JSON)."""
    rollups: list[tuple[Any, ...]]
    readbacks: list[tuple[Any, ...]] = field(default_factory=list)
    """(run, device, t, volts, amps): the bench supply's readback."""

    @classmethod
    def of_rows(cls, rows: Sequence[Sequence[Any]]) -> Batch:
        """A batch of these sample rows and their rollups."""
        return cls(flat(rows), [], rollup_rows(rows))

    def __len__(self) -> int:
        return len(self.samples) // ROW_VALUES + len(self.events) + len(self.readbacks)


INSERT_ROWS_MAX = 64
"""Most sample rows one INSERT statement carries. A batch is cut in powers of two up to this,
so sqlite compiles and caches seven fixed statements. Longer statements write no faster and
cost more memory to keep compiled (docs/performance.md)."""


@functools.lru_cache(maxsize=16)
def _insert_sql(rows: int) -> str:
    one = f"({', '.join('?' * len(SAMPLE_COLUMNS))})"
    return f"INSERT OR IGNORE INTO samples ({', '.join(SAMPLE_COLUMNS)}) VALUES " + ",".join(
        [one] * rows
    )


def _insert_samples(conn: sqlite3.Connection, values: Sequence[Any]) -> None:
    """Many rows a statement, not one: more rows/s than executemany, and the writer's thread
    needs the GIL once a statement to bind it rather than once a row, which a busy link thread
    would make it wait for (docs/performance.md). `values` is flat (see Batch)."""
    most = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // ROW_VALUES
    size = INSERT_ROWS_MAX
    while size > max(1, most):
        size //= 2
    rows = len(values) // ROW_VALUES
    i = 0
    while i < rows:
        while size > rows - i:
            size //= 2
        conn.execute(_insert_sql(size), values[i * ROW_VALUES : (i + size) * ROW_VALUES])
        i += size


def write_batch(conn: sqlite3.Connection, batch: Batch) -> None:
    """Everything in one transaction: all of it lands, or none of it (and it can be retried)."""
    with conn:
        if batch.samples:
            _insert_samples(conn, batch.samples)
        if batch.events:
            conn.executemany(
                "INSERT INTO events (run, device, t, kind, data) VALUES (?, ?, ?, ?, ?)",
                batch.events,
            )
        if batch.rollups:
            conn.executemany(ROLLUP_MERGE, batch.rollups)
        if batch.readbacks:
            conn.executemany(
                "INSERT OR IGNORE INTO readbacks (run, device, t, volts, amps) "
                "VALUES (?, ?, ?, ?, ?)",
                batch.readbacks,
            )


_DELETE_OLDER = {
    # Range deletes up to the limit-th oldest row: one B-tree range, no per-row lookups.
    "samples": (
        "DELETE FROM samples WHERE t < :cutoff AND t <= "
        "(SELECT max(t) FROM (SELECT t FROM samples WHERE t < :cutoff ORDER BY t LIMIT :limit))"
    ),
    "events": (
        "DELETE FROM events WHERE id IN "
        "(SELECT id FROM events WHERE t < :cutoff ORDER BY t LIMIT :limit)"
    ),
    "readbacks": (
        "DELETE FROM readbacks WHERE t < :cutoff AND t <= "
        "(SELECT max(t) FROM (SELECT t FROM readbacks WHERE t < :cutoff ORDER BY t LIMIT :limit))"
    ),
    "rollups": (
        "DELETE FROM rollups WHERE width = :width AND bucket < :cutoff AND bucket <= "
        "(SELECT max(bucket) FROM (SELECT bucket FROM rollups "
        "WHERE width = :width AND bucket < :cutoff ORDER BY bucket LIMIT :limit))"
    ),
}


_OLDEST = {
    "samples": "SELECT min(t) FROM samples",
    "events": "SELECT min(t) FROM events",
    "readbacks": "SELECT min(t) FROM readbacks",
    "rollups": "SELECT min(bucket) FROM rollups WHERE width = :width",
}

Expiry = tuple[str, float, int | None]
"""(table, cutoff, rollup width or None): rows of a table older than cutoff go."""


def delete_older(conn: sqlite3.Connection, expiries: Iterable[Expiry], limit: int) -> int:
    """Delete at most about `limit` of the oldest expired rows of each table (rows sharing the
    last time go too), in one transaction; returns how many. A table with nothing expired costs
    one index probe and no write."""
    deleted = 0
    with conn:
        for table, cutoff, width in expiries:
            args = {"cutoff": cutoff, "limit": limit, "width": width}
            oldest = conn.execute(_OLDEST[table], args).fetchone()[0]
            if oldest is not None and oldest < cutoff:
                deleted += conn.execute(_DELETE_OLDER[table], args).rowcount
    return deleted


def info(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    def one(sql: str, args: Sequence[Any] = ()) -> Any:
        return conn.execute(sql, args).fetchone()[0]

    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return {
        "path": str(path),
        "bytes": size,
        "schema_version": schema_version(conn),
        "runs": one("SELECT count(*) FROM runs"),
        "devices": ", ".join(
            name for (name,) in conn.execute("SELECT DISTINCT name FROM devices ORDER BY name")
        )
        or "none",
        "samples": one("SELECT count(*) FROM samples"),
        "events": one("SELECT count(*) FROM events"),
        "readbacks": one("SELECT count(*) FROM readbacks"),
        "rollups_1m": one("SELECT count(*) FROM rollups WHERE width = 60"),
        "rollups_10s": one("SELECT count(*) FROM rollups WHERE width = 10"),
        "oldest_sample": one("SELECT min(t) FROM samples"),
        "newest_sample": one("SELECT max(t) FROM samples"),
        "oldest_rollup": one("SELECT min(bucket) FROM rollups WHERE width = 60"),
    }


def rows_to_dicts(cursor: sqlite3.Cursor) -> Iterable[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))
