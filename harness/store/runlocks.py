"""Which runs a live process holds: how the store tells a run in progress from a killed one.

The process that creates a run takes an exclusive `flock` on a file of the run's own beside the
database (`<db>-runs/<id>.lock`) in the transaction that inserts the run's row, and keeps it
until the run's end is committed. The kernel lets go of a lock when its process dies, however
it dies, so a run with no verdict whose file nobody locks was killed. A pid in the row would
not do as well: a pid names a process only while that process lives, and after a kill the
next process may get the same one (a restarted container starts its harness with the same
pid), which would leave the killed run looking held for as long as that process runs.

`flock` locks belong to an open file, not to a process: a second open of the file in the
process that holds it conflicts with the hold too, so a run is seen as held from its own
process as from any other. Blocking file calls, each quick: callers use them as they use the
database's own calls (from a worker thread in a run, or before it starts).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from harness.errors import UserError

_HELD: dict[Path, int] = {}
"""The lock files this process holds, with their open descriptors (closing one lets go)."""


def _folder(conn: sqlite3.Connection) -> Path | None:
    """Where the database's run locks live; None for a database in memory (no other process
    can open it, so there is nothing to tell apart)."""
    file = conn.execute("PRAGMA database_list").fetchone()[2]
    return Path(f"{file}-runs") if file else None


def _path(conn: sqlite3.Connection, run: int) -> Path | None:
    folder = _folder(conn)
    return None if folder is None else folder / f"{run}.lock"


def hold(conn: sqlite3.Connection, run: int) -> None:
    """Lock the run's file for as long as this process lives or until `release`. Called inside
    the transaction that inserts the run's row, so no other process sees the row unheld."""
    path = _path(conn, run)
    if path is None:
        return
    try:
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(
            f"{path.parent}: cannot keep the run's lock file there ({exc.strerror}); use --db OTHER.db"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    _HELD[path] = fd


def release(conn: sqlite3.Connection, run: int) -> None:
    """Let go of the run's lock and remove its file: call after the run's end is committed (from
    then on nobody looks at the file)."""
    path = _path(conn, run)
    fd = _HELD.pop(path, None) if path is not None else None
    if path is None or fd is None:
        return
    path.unlink(missing_ok=True)
    os.close(fd)


def is_held(conn: sqlite3.Connection, run: int) -> bool:
    """Whether a live process holds the run. A missing file means no: the file is made before
    the row is committed and removed only after the run's end is. A file this process cannot
    open (another user's) counts as held: without knowing, a run is never called killed."""
    path = _path(conn, run)
    if path is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # let go again when fd is closed
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def forget(conn: sqlite3.Connection, run: int) -> None:
    """Remove the lock file a killed run left behind."""
    path = _path(conn, run)
    if path is not None:
        path.unlink(missing_ok=True)
