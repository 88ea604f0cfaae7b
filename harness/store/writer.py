"""The store's writer: one trio task per run that takes what the bus publishes and writes it in
batches (at most 100 ms or 1,000 rows a transaction) through `trio.to_thread`, so the link never
waits for the disk. A database error never reaches the link: the rows stay in memory, the
problem is reported once, and the batch is retried with backoff. Retention deletes old rows in
small steps, each kept under 50 ms, between batches.

In virtual time (`harness run --fast`: a MockClock that jumps whenever every task waits) the
clock does not move while the writer's thread works: the run waits for the store as a real
run's disk keeps up with it, so the rows held stay within about a batch, and retention, which
runs on the run's own clock (`wall()`), acts as the run's time passes.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import trio

from harness.link import seqnum
from harness.runner.bus import Published, RunEvent, SampleEvent
from harness.store.db import ROW_VALUES, Batch, delete_older, rows_of, sample_row, write_batch
from harness.store.rollup import rollup_rows

if TYPE_CHECKING:
    from trio.testing import MockClock

T = TypeVar("T")

BATCH_ROWS = 1000
BATCH_SECONDS = 0.1
RETENTION_EVERY = 60.0
STEP_BUDGET = 0.05
"""Longest a retention step may hold the database (seconds)."""
RETRY_FIRST = 0.5
RETRY_MAX = 10.0
CLOSING_RETRIES = 10.0
"""After the run, how long the writer keeps retrying a failing database before giving up."""
FLUSH_BATCHES = 8
"""Batches one trip to the thread writes (each its own transaction): a backlog, as after a
burst, costs one hand-off to the thread per 8,000 rows rather than per 1,000, and a trip stays
short enough that the task soon sees new input and retention again."""
BACKLOG_MAX = 2_000_000
"""Rows kept in memory while the database fails; beyond this the oldest batch is dropped."""


@dataclass(frozen=True, slots=True)
class Retention:
    raw: float = 48 * 3600.0
    """Samples, events and 10 s rollups are kept this long (seconds)."""
    rollups: float = 30 * 86400.0
    """One-minute rollups are kept this long."""


_HOLDS: weakref.WeakKeyDictionary[MockClock, tuple[int, float]] = weakref.WeakKeyDictionary()
"""Per virtual clock: how many holds are open on it, and its autojump threshold before the
first (writers of one trio run share its clock; the last to let go restores it)."""


def _virtual_clock() -> MockClock | None:
    """The current trio run's clock if it is a MockClock (None outside a trio run). trio.testing
    is looked up rather than imported: a process that did not import it runs on no MockClock."""
    testing = sys.modules.get("trio.testing")
    if testing is None:
        return None
    try:
        clock = trio.lowlevel.current_clock()
    except RuntimeError:
        return None
    return clock if isinstance(clock, testing.MockClock) else None


@contextmanager
def clock_held() -> Iterator[None]:
    """Inside, a MockClock driving this run does not jump ahead (its autojump is off), so no
    virtual time passes while the store's thread works: with every task waiting, trio's loop
    sleeps until the thread reports back instead of advancing time and producing more rows.
    Every call inside must end on its own (each SQLite call ends within the busy timeout), as
    nothing waiting on the clock can wake the run meanwhile. In real time this does nothing."""
    clock = _virtual_clock()
    if clock is None:
        yield
        return
    depth, threshold = _HOLDS.get(clock, (0, clock.autojump_threshold))
    _HOLDS[clock] = (depth + 1, threshold)
    clock.autojump_threshold = math.inf
    try:
        yield
    finally:
        depth, threshold = _HOLDS.pop(clock)
        if depth > 1:
            _HOLDS[clock] = (depth - 1, threshold)
        else:
            clock.autojump_threshold = threshold


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in a worker thread, with a virtual clock held meanwhile (see clock_held)."""
    with clock_held():
        return await trio.to_thread.run_sync(fn, *args)


def _write_batches(
    conn: sqlite3.Connection, batches: list[Batch]
) -> tuple[int, sqlite3.Error | None]:
    """Write the batches in order, each in its own transaction, until one fails: how many were
    written and the error that stopped the rest (None if none did)."""
    for i, batch in enumerate(batches):
        try:
            write_batch(conn, batch)
        except sqlite3.Error as exc:
            return i, exc
    return len(batches), None


class StoreWriter:
    def __init__(
        self,
        conn: sqlite3.Connection,
        run: int,
        wall0: float,
        origin: float,
        retention: Retention = Retention(),
        on_problem: Callable[[str], None] = lambda message: None,
        device: str | None = None,
    ) -> None:
        self.conn = conn
        self.run_id = run
        self.device = device
        """The device every row taken is written for; None: each item's own."""
        self.wall0 = wall0
        self.origin = origin
        self.retention = retention
        self.on_problem = on_problem
        self._closed = False
        self._first: float | None = None
        """When the oldest row held arrived (trio time); None while nothing is held."""
        self._wake = trio.Event()
        """Set by `take` when a batch starts or fills, and by `close`."""
        self._last_seq: dict[tuple[str, int], int] = {}
        """The last seq written, by device and boot."""
        self.duplicates_dropped = 0
        self._samples: list[object] = []
        """Rows held for the next batch, flat (see Batch)."""
        self._events: list[tuple[object, ...]] = []
        self._readbacks: list[tuple[object, ...]] = []
        """The bench supply's readbacks, for their own table (not `events`)."""
        self._backlog: deque[Batch] = deque()
        self._retry_at = 0.0
        self._retry_delay = RETRY_FIRST
        self._failing = False
        self._last_problem = ""
        self._next_retention = 0.0
        self._retention_limit = 2000
        self._retention_pending = False
        self.rows_written = 0
        self.rows_dropped = 0
        """Rows given up on (the database failed too long): reported, never silently."""
        self.rows_deleted = 0
        self.longest_step = 0.0
        self.retention_cutoff: float | None = None
        """Raw-data cutoff (unix seconds) of the last finished retention pass."""

    def wall(self) -> float:
        """Unix seconds now, on trio's clock (virtual under a MockClock)."""
        return self.wall0 + (trio.current_time() - self.origin)

    # --- input (from the bus; never blocks) ------------------------------------------------

    def take(self, item: Published) -> None:
        """Hold the item's row for the next batch: constant work, no waiting (it runs inside the
        link's call chain). The task is woken only when a batch starts or fills."""
        if self._closed:
            return  # late events are not the run's
        device = self.device or item.device
        if type(item) is SampleEvent:
            s = item.sample
            key = (device, s.boot)
            last = self._last_seq.get(key)
            if last is not None and seqnum.diff(s.seq, last) <= 0:
                self.duplicates_dropped += 1  # (run, device, boot, seq) is written once
                return
            self._last_seq[key] = s.seq
            w0 = self.wall0
            self._samples.extend(
                sample_row(self.run_id, s, w0 + item.end, w0 + item.arrived, device)
            )
        elif isinstance(item, RunEvent) and item.kind == "readback":
            d = item.data
            self._readbacks.append(
                (self.run_id, device, self.wall0 + item.at, d["volts"], d["amps"])
            )
        elif isinstance(item, RunEvent):
            data = json.dumps(item.data, default=str)
            self._events.append((self.run_id, device, self.wall0 + item.at, item.kind, data))
        else:
            return
        if self._first is None:
            self._first = trio.current_time()
            self._wake.set()
        elif self.held == BATCH_ROWS:
            self._wake.set()

    def close(self) -> None:
        """No more input: `run` writes what it holds and returns."""
        self._closed = True
        self._wake.set()

    @property
    def held(self) -> int:
        """Rows taken for the open batch."""
        return len(self._samples) // ROW_VALUES + len(self._events) + len(self._readbacks)

    @property
    def pending_rows(self) -> int:
        """Rows taken but not yet written: in the open batch, or waiting to retry."""
        return self.held + self.backlog_rows

    @property
    def backlog_rows(self) -> int:
        """Rows in closed batches, written next or waiting to retry."""
        return sum(len(b) for b in self._backlog)

    # --- the task --------------------------------------------------------------------------

    async def run(self) -> None:
        give_up_at: float | None = None
        while not self._closed or self.held or self._backlog:
            now = trio.current_time()
            if self._first is not None and (
                self._closed or self.held >= BATCH_ROWS or now >= self._first + BATCH_SECONDS
            ):
                self._cut(now)
            if self._backlog and now >= self._retry_at:
                await self._flush()
                now = trio.current_time()
            if self._closed:
                if not self._backlog:
                    continue
                if give_up_at is None:
                    give_up_at = now + CLOSING_RETRIES
                if now >= give_up_at:
                    self.rows_dropped += self.backlog_rows
                    self.on_problem(f"store: gave up; {self.rows_dropped} rows not written")
                    return
                await trio.sleep_until(min(self._retry_at, give_up_at))
                continue
            if now >= self._next_retention or self._retention_pending:
                await self._retention_step()
                continue
            deadline = self._next_retention
            if self._first is not None:
                deadline = min(deadline, self._first + BATCH_SECONDS)
            if self._backlog:
                deadline = min(deadline, self._retry_at)
            with trio.move_on_at(deadline):
                await self._wake.wait()
            self._wake = trio.Event()

    def _cut(self, now: float) -> None:
        """Close what is held into batches of at most BATCH_ROWS samples (the events and
        readbacks go with the first) for the backlog."""
        samples, events, readbacks = self._samples, self._events, self._readbacks
        step = BATCH_ROWS * ROW_VALUES
        for i in range(0, max(len(samples), 1), step):
            chunk = samples[i : i + step]
            rollups = rollup_rows(rows_of(chunk))
            first = i == 0
            self._backlog.append(
                Batch(chunk, events if first else [], rollups, readbacks if first else [])
            )
        self._samples, self._events, self._readbacks, self._first = [], [], [], None
        if not self._failing:
            self._retry_at = now

    async def _flush(self) -> None:
        while self._backlog:
            batches = list(itertools.islice(self._backlog, FLUSH_BATCHES))
            written, error = await _in_thread(_write_batches, self.conn, batches)
            for _ in range(written):
                self.rows_written += len(self._backlog.popleft())
            if error is not None:
                self._failing = True
                self._problem(
                    f"store: cannot write ({error}); {self.backlog_rows} rows kept, retrying in {self._retry_delay:g} s"
                )
                self._retry_at = trio.current_time() + self._retry_delay
                self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)
                self._trim_backlog()
                return
            self._failing = False
            if self._last_problem:
                lost = f"{self.rows_dropped} rows dropped" if self.rows_dropped else "nothing lost"
                self._problem(f"store: writing again; {lost}")
                self._last_problem = ""
            self._retry_delay = RETRY_FIRST

    def _trim_backlog(self) -> None:
        while self.backlog_rows > BACKLOG_MAX and len(self._backlog) > 1:
            lost = self._backlog.popleft()
            self.rows_dropped += len(lost)
            self.on_problem(
                f"store: still failing; dropped the oldest {len(lost)} rows to bound memory "
                f"({self.rows_dropped} in all)"
            )

    def _problem(self, message: str) -> None:
        kind = message.split(";")[0]
        if kind != self._last_problem:
            self._last_problem = kind
            self.on_problem(message)

    async def _retention_step(self) -> None:
        """Delete one small batch of each kind of old row; come back until none is left."""
        now = self.wall()
        raw_cutoff = now - self.retention.raw
        rollup_cutoff = now - self.retention.rollups
        limit = self._retention_limit

        expiries = (
            ("samples", raw_cutoff, None),
            ("events", raw_cutoff, None),
            ("readbacks", raw_cutoff, None),
            ("rollups", raw_cutoff, 10),
            ("rollups", rollup_cutoff, 60),
        )

        started = time.perf_counter()
        try:
            deleted = await _in_thread(delete_older, self.conn, expiries, limit)
        except sqlite3.Error as exc:
            self._problem(f"store: retention failed ({exc}); will try again")
            deleted = 0
        took = time.perf_counter() - started
        self.longest_step = max(self.longest_step, took)
        if took > STEP_BUDGET:
            self._retention_limit = max(100, limit // 2)
        elif took < STEP_BUDGET / 3 and deleted >= limit:
            self._retention_limit = min(50_000, limit * 2)
        self.rows_deleted += deleted
        self._retention_pending = deleted >= limit
        if not self._retention_pending:
            self.retention_cutoff = raw_cutoff
            self._next_retention = trio.current_time() + RETENTION_EVERY
