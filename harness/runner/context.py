"""The contracts a run offers its consumers: the engine's own options, the context an extension
sees, what the store shows of itself to the others, and the extension's shape. The engine
(`run.py`) and every consumer (store, viewer, bench, tests) import these; the engine imports no
consumer, and `harness.cli` composes them."""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

import trio

from harness.errors import UserError
from harness.runner.bus import Bus, Published
from harness.runner.observer import Observer
from harness.runner.session import HostSession
from harness.scenario.model import Device, Scenario
from harness.targets import Target

if TYPE_CHECKING:
    from harness.relay import FaultRelay
    from harness.runner.record import RunRecord

DRAIN_MAX = 5.0
"""Seconds the run waits after the scenario for what is still in flight (the link's recovery
bound is 3.5 s)."""


@dataclass
class RunOptions:
    """What the engine itself needs; each consumer takes its own settings as arguments."""

    target: str = "mock"
    serial: str | None = None
    """The board's port (a scenario of one device)."""
    serials: dict[str, str] = field(default_factory=dict)
    """Each board's port by device name (`--serial NAME=PATH`)."""
    seed: int | None = None
    json: Path | None = None
    junit: Path | None = None
    fast: bool = False
    """Virtual time: a MockClock that jumps ahead whenever every task waits."""
    strict: bool = False
    """A marginal expectation fails the run (exit code 1), as a failed one does."""
    status: bool = False
    """Draw the live status line on `out`."""
    out: TextIO = field(default_factory=lambda: sys.stdout)

    def seed_for(self, scenario: Scenario) -> int:
        return scenario.seed if self.seed is None else self.seed

    def serial_for(self, device: Device) -> str | None:
        """The device's port: on the command line (`--serial NAME=PATH`, or the plain one of a
        scenario of one device), else in its [[device]] entry (None: found by its USB id)."""
        return self.serials.get(device.name) or self.serial or device.serial


class StoreView(Protocol):
    """What the store shows of itself to the run's other consumers (the live page's store
    panel) while it is attached."""

    @property
    def run_id(self) -> int: ...

    @property
    def rows_written(self) -> int: ...

    @property
    def pending_rows(self) -> int:
        """Rows taken but not yet committed."""
        ...

    @property
    def rows_dropped(self) -> int:
        """Rows given up (the database failed past what the writer holds)."""
        ...


@dataclass
class DeviceRun:
    """One device of a run: its view of the scenario (its steps, expectations, link and setup),
    its target, its observer and, once its stream is open, its host session. Each runs in a
    nursery of its own, a child of the run's: one whose link ends stops alone."""

    name: str
    scenario: Scenario
    seed: int
    """Its own: the run's seed for the first device, the next ones for the others."""
    target: Target | None
    observer: Observer
    session: HostSession | None = None
    relay: FaultRelay | None = None
    error: str | None = None
    """Why it stopped before the run did (its stream ended, a reset did not take)."""


@dataclass
class RunContext:
    """What extensions (the store, the viewer) get to see of a run."""

    scenario: Scenario
    options: RunOptions
    seed: int
    origin: float
    """Trio time of scenario second 0."""
    bus: Bus
    observer: Observer
    target: Target | None = None
    session: HostSession | None = None
    """The host end of the link, once the target's stream is open."""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    record: RunRecord | None = None
    """Set when the run has ended, before the extensions are left."""
    store: StoreView | None = None
    """The store, while one is attached."""
    stop: trio.Event = field(default_factory=trio.Event)
    """Set to end the run before its time, as Ctrl-C does (the pytest plugin's device
    session ends so: drained, with its record)."""
    devices: dict[str, DeviceRun] = field(default_factory=dict)
    """Every device of the run by name, in the scenario's order; `observer`, `target` and
    `session` are the first one's (a run of one device: its only one)."""

    unwritten: list[str] = field(default_factory=list)
    """The reports (`--json`, `--junit`, `--html`) the run could not write when it ended, a
    line each: said after the verdict table, and the run then exits 2 (`write_at_end`)."""

    def __post_init__(self) -> None:
        if not self.devices:
            name = self.observer.device
            self.devices = {
                name: DeviceRun(name, self.scenario, self.seed, self.target, self.observer)
            }

    def write_at_end(self, write: Callable[[], None]) -> None:
        """Write a report of the ended run. One that cannot be written (a UserError: its
        folder gone, the disk full) keeps its line for after the verdict table and stops
        nothing: the other reports and the log are written all the same."""
        try:
            write()
        except UserError as exc:
            self.unwritten.append(str(exc))

    @property
    def run_id(self) -> int | None:
        return None if self.store is None else self.store.run_id

    @property
    def wall0(self) -> float:
        """Unix seconds the log gives scenario second 0. A real-time run: when it started. A
        run in virtual time is placed as if it had run in real time and ended when it was
        started (its scenario and the longest drain before `started`), so its samples lie in
        the past like every other run's: `export --since`, history and retention see them
        where a person looks for them, and none lies in the future."""
        start = self.started.timestamp()
        duration = self.scenario.duration
        if not self.options.fast or not math.isfinite(duration):
            return start
        return start - duration - DRAIN_MAX


Extension = Callable[[RunContext], AbstractAsyncContextManager[None]]
"""Something that lives as long as a run (the store, the viewer): entered before the run starts
(it may refuse with a UserError), left after the record is made (ctx.record is set then)."""


def tap(take: Callable[[Published], None], seen: list[RunContext] | None = None) -> Extension:
    """An extension that hands everything the run publishes to `take` (and appends the run's
    context to `seen`, for what only the context holds, e.g. its target)."""

    @asynccontextmanager
    async def extension(ctx: RunContext) -> AsyncIterator[None]:
        if seen is not None:
            seen.append(ctx)
        unsubscribe = ctx.bus.subscribe(take)
        try:
            yield
        finally:
            unsubscribe()

    return extension
