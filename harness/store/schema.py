"""The SQLite schema and its migrations. `SCHEMA_VERSION` is stored in `meta`; opening an older
database runs the missing migrations in order, a newer one is refused."""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1
ROLLUP_WIDTHS: Final = (10, 60)
"""Rollup bucket widths in seconds: 10 s (kept like raw samples) and 1 minute (kept 30 days)."""

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: the first schema
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE runs (
        id       INTEGER PRIMARY KEY,
        kind     TEXT NOT NULL,           -- run | monitor
        scenario TEXT,
        target   TEXT NOT NULL,
        seed     INTEGER,
        firmware TEXT,
        boots    TEXT,                    -- JSON list of boot counters seen
        started  REAL NOT NULL,           -- unix seconds
        ended    REAL,
        verdict  TEXT,                    -- pass|fail|error|interrupted|stopped|killed; NULL: running
        record   TEXT                     -- the run record, JSON
    );
    CREATE TABLE samples (
        run     INTEGER NOT NULL,
        boot    INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        t       REAL NOT NULL,            -- host time of the sample's end, unix seconds
        arrived REAL NOT NULL,            -- host time it was delivered
        ts      INTEGER NOT NULL,         -- device ms since boot at its end
        dt      INTEGER NOT NULL,         -- device ms it covers
        v REAL NOT NULL, a REAL NOT NULL, w REAL NOT NULL,
        vmin REAL NOT NULL, vmax REAL NOT NULL, amax REAL NOT NULL,
        n       INTEGER NOT NULL,
        status  TEXT NOT NULL,
        -- A sample is named by (run, boot, seq); the writer never writes one twice. The key
        -- leads with t so that time ranges (history, retention, export) read this one
        -- B-tree, and there is no second index for (run, boot, seq): each insert writes one
        -- B-tree, not two.
        PRIMARY KEY (t, run, boot, seq)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id   INTEGER PRIMARY KEY,
        run  INTEGER,
        t    REAL NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL                -- JSON
    );
    CREATE INDEX events_t ON events (t);
    CREATE INDEX events_run ON events (run, t);
    CREATE TABLE rollups (
        width   INTEGER NOT NULL,         -- seconds: 10 or 60
        bucket  INTEGER NOT NULL,         -- unix seconds at the bucket's start
        run     INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        n       INTEGER NOT NULL,         -- readings
        v_min REAL, v_max REAL, v_sum REAL,   -- sums weighted by readings
        a_min REAL, a_max REAL, a_sum REAL,
        w_min REAL, w_max REAL, w_sum REAL,
        wh      REAL NOT NULL,            -- energy in the bucket
        mah     REAL NOT NULL,            -- charge in the bucket
        PRIMARY KEY (width, bucket, run)
    ) WITHOUT ROWID;
    """,
)
