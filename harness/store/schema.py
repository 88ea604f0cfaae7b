"""The SQLite schema and its migrations. `SCHEMA_VERSION` is stored in `meta`; opening an older
database runs the missing migrations in order, a newer one is refused."""

from __future__ import annotations

from typing import Final

from harness.scenario.model import DEFAULT_DEVICE

SCHEMA_VERSION: Final = 3
ROLLUP_WIDTHS: Final = (10, 60)
"""Rollup bucket widths in seconds: 10 s (kept like raw samples) and 1 minute (kept 30 days)."""
_DUT = f"'{DEFAULT_DEVICE}'"
"""The device every row of a log from before schema 3 belongs to, as an SQL literal."""

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
    # 2: the bench supply's readback, a table of its own: polled 5 times a second, as events
    # (JSON, two indexes) it would take several times the room of the samples themselves
    # (docs/performance.md). Keyed by time first, as samples are, for export and retention.
    """
    CREATE TABLE readbacks (
        run   INTEGER NOT NULL,
        t     REAL NOT NULL,              -- when the supply measured, unix seconds
        volts REAL NOT NULL,
        amps  REAL NOT NULL,
        PRIMARY KEY (t, run)
    ) WITHOUT ROWID;
    """,
    # 3: every row names its device (a run may hold several). Two devices of one run can have
    # the same boot, seq and time (two mocks with one seed in virtual time), so the device is
    # in each key; a WITHOUT ROWID table's key cannot change in place, so samples, rollups and
    # readbacks are rebuilt (in key order: each insert appends) and every existing row goes to
    # the one device a run had. `devices` names each run's devices, so listing them reads no
    # samples.
    f"""
    CREATE TABLE samples_3 (
        run     INTEGER NOT NULL,
        device  TEXT NOT NULL DEFAULT {_DUT},
        boot    INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        t       REAL NOT NULL,
        arrived REAL NOT NULL,
        ts      INTEGER NOT NULL,
        dt      INTEGER NOT NULL,
        v REAL NOT NULL, a REAL NOT NULL, w REAL NOT NULL,
        vmin REAL NOT NULL, vmax REAL NOT NULL, amax REAL NOT NULL,
        n       INTEGER NOT NULL,
        status  TEXT NOT NULL,
        PRIMARY KEY (t, run, device, boot, seq)
    ) WITHOUT ROWID;
    INSERT INTO samples_3 (run, boot, seq, t, arrived, ts, dt, v, a, w, vmin, vmax, amax, n,
                           status)
        SELECT run, boot, seq, t, arrived, ts, dt, v, a, w, vmin, vmax, amax, n, status
        FROM samples ORDER BY t, run, boot, seq;
    DROP TABLE samples;
    ALTER TABLE samples_3 RENAME TO samples;

    CREATE TABLE rollups_3 (
        width   INTEGER NOT NULL,
        bucket  INTEGER NOT NULL,
        run     INTEGER NOT NULL,
        device  TEXT NOT NULL DEFAULT {_DUT},
        samples INTEGER NOT NULL,
        n       INTEGER NOT NULL,
        v_min REAL, v_max REAL, v_sum REAL,
        a_min REAL, a_max REAL, a_sum REAL,
        w_min REAL, w_max REAL, w_sum REAL,
        wh      REAL NOT NULL,
        mah     REAL NOT NULL,
        PRIMARY KEY (width, bucket, run, device)
    ) WITHOUT ROWID;
    INSERT INTO rollups_3 (width, bucket, run, samples, n, v_min, v_max, v_sum, a_min, a_max,
                           a_sum, w_min, w_max, w_sum, wh, mah)
        SELECT width, bucket, run, samples, n, v_min, v_max, v_sum, a_min, a_max, a_sum,
               w_min, w_max, w_sum, wh, mah
        FROM rollups ORDER BY width, bucket, run;
    DROP TABLE rollups;
    ALTER TABLE rollups_3 RENAME TO rollups;

    CREATE TABLE readbacks_3 (
        run    INTEGER NOT NULL,
        device TEXT NOT NULL DEFAULT {_DUT},   -- the device whose rail the supply feeds
        t      REAL NOT NULL,
        volts  REAL NOT NULL,
        amps   REAL NOT NULL,
        PRIMARY KEY (t, run, device)
    ) WITHOUT ROWID;
    INSERT INTO readbacks_3 (run, t, volts, amps)
        SELECT run, t, volts, amps FROM readbacks ORDER BY t, run;
    DROP TABLE readbacks;
    ALTER TABLE readbacks_3 RENAME TO readbacks;

    ALTER TABLE events ADD COLUMN device TEXT NOT NULL DEFAULT {_DUT};

    CREATE TABLE devices (
        run      INTEGER NOT NULL,
        name     TEXT NOT NULL,
        target   TEXT NOT NULL,           -- mock | sim | board
        port     TEXT,                    -- the serial port it was given, if any
        firmware TEXT,                    -- from its last hello
        boots    TEXT,                    -- JSON list of boot counters seen
        PRIMARY KEY (run, name)
    ) WITHOUT ROWID;
    INSERT INTO devices (run, name, target, firmware, boots)
        SELECT id, {_DUT}, target, firmware, boots FROM runs;
    """,
)
