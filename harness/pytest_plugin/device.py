"""A live session with the devices under test, for tests written in Python: a run of a scenario
(by default `harness monitor`'s endless one: a clean link, a steady 5 V rail) in the caller's
trio loop, with a handle on each of its devices to send commands and await their acks, await
samples and log lines, and read the link totals as they stand. The session ends, drained and
with its record, when its `async with` is left."""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from harness.errors import UserError, found_in
from harness.link import Sample
from harness.runner.bus import Published, RunEvent, SampleEvent
from harness.runner.context import DeviceRun, Extension, RunContext, RunOptions, tap
from harness.runner.record import HelloInfo, LinkTotals, RunRecord
from harness.scenario.model import Scenario
from harness.scenario.units import format_duration
from harness.targets import Target

T = TypeVar("T")

LOG_KEPT = 10_000
"""The device log lines a session keeps, the latest (`Device.log`, `log_line`): a device logs
a line an event, not a sample, so these are the whole log of any test but a runaway one."""


class DeviceTimeout(AssertionError):
    """What the test awaited did not come within its timeout (a failed test, not an error)."""


class CommandRefused(AssertionError):
    """The device refused a command, or it went unanswered after the link's resends."""


class SessionEnded(AssertionError):
    """The session ended (the device's stream broke, the scenario's time was up) while the test
    still waited on it."""


class Device:
    """The test's handle on one device of the session: what it sends goes to that device, what
    it awaits is that device's. Times are the session's seconds (0: when it started), in
    virtual time under `--powerhil-fast`."""

    def __init__(self, name: str) -> None:
        self.name = name
        """The device's name in the session's scenario (`dut` for a scenario that names none)."""
        self._ctx: RunContext | None = None
        self._waits: list[list[Sample]] = []
        """The samples each pending `samples()` has taken so far: a sample is kept only while a
        test waits for it, so a long session holds none it has not asked for."""
        self._log: deque[tuple[float, str]] = deque(maxlen=LOG_KEPT)
        self._news = trio.Event()
        self._started = False
        self._ended: str | None = None
        self.record: RunRecord | None = None
        """The session's run record, once it has ended."""

    # --- what the run publishes ------------------------------------------------------------

    def _take(self, item: Published) -> None:
        """A bus subscriber: keeps what the test may await of this device, and wakes its waits
        (the run's own events, its start, are every device's)."""
        if isinstance(item, SampleEvent):
            if item.device == self.name:
                for taken in self._waits:
                    taken.append(item.sample)
        elif isinstance(item, RunEvent):
            if item.kind == "log" and item.device == self.name:
                self._log.append((item.at, item.data["text"]))
            elif item.kind == "run" and item.data.get("state") == "started":
                self._started = True
        self._wake()

    def _wake(self) -> None:
        self._news.set()
        self._news = trio.Event()

    def _end(self, why: str) -> None:
        if self._ended is None:
            self._ended = why
        self._wake()

    @property
    def _run(self) -> DeviceRun:
        """This device's part of the run: its observer and, once the run started, its session."""
        assert self._ctx is not None
        dev = self._ctx.devices[self.name]
        assert dev.session is not None
        return dev

    async def _until(self, found: Callable[[], T | None], timeout: float | None, what: str) -> T:
        """`found()`'s first value that is not None, waiting as the run publishes."""
        __tracebackhide__ = True  # a timeout's report is the test's line that awaited
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                value = found()
                if value is not None:
                    return value
                if self._ended is not None:
                    raise SessionEnded(f"{what}: the session ended first ({self._ended})")
                if (gone := self._run.error) is not None:  # this one's link ended, not the run
                    raise SessionEnded(f"{what}: {self.name}'s link ended first ({gone})")
                await self._news.wait()
        assert timeout is not None
        raise DeviceTimeout(f"{what}: not within {format_duration(timeout)}")

    # --- what a test does ------------------------------------------------------------------

    def now(self) -> float:
        """The session's seconds now."""
        return self._run.observer.now(trio.current_time())

    async def command(self, name: str, *, timeout: float | None = None, **args: Any) -> float:
        """Send a command and await its ack; returns its latency in seconds. A refusal, or no
        answer after the link's resends (about 10 s), raises CommandRefused; an argument the
        device would refuse raises ValueError before anything is sent."""
        __tracebackhide__ = True
        dev = self._run
        assert dev.session is not None
        handle = dev.session.send_command(name, args)
        dev.observer.issued(handle, name, args, None, trio.current_time())
        shown = " ".join([name, *(f"{k}={v}" for k, v in args.items())])
        sent = dev.observer.commands[handle]
        await self._until(
            lambda: None if sent.outcome == "pending" else sent, timeout, f"ack of {shown}"
        )
        if sent.outcome != "done" or sent.latency is None:
            raise CommandRefused(f"{shown}: {sent.outcome} ({sent.reason})")
        return sent.latency

    async def samples(self, n: int, *, timeout: float | None = 10.0) -> list[Sample]:
        """The next `n` samples the host delivers, in order (from when it is called: samples no
        test awaited are not kept)."""
        __tracebackhide__ = True
        taken: list[Sample] = []

        def got() -> list[Sample] | None:
            return taken[:n] if len(taken) >= n else None

        self._waits.append(taken)
        try:
            return await self._until(got, timeout, f"{n} samples")
        finally:
            self._waits.remove(taken)

    async def log_line(
        self, pattern: str, *, timeout: float | None = 5.0, since: float = 0.0
    ) -> str:
        """The first device log line (after the `#`, trimmed) that the regular expression is
        found in and that arrived at the session's second `since` or later (default: any
        since the session started, such as the boot line), among the last LOG_KEPT lines."""
        __tracebackhide__ = True
        regex = re.compile(pattern)

        def line() -> str | None:
            return next(
                (text for at, text in self._log if at >= since and regex.search(text)), None
            )

        return await self._until(line, timeout, f"a log line matching /{pattern}/")

    @property
    def log(self) -> list[tuple[float, str]]:
        """The session's log lines so far (the last LOG_KEPT), with their arrival in session
        seconds."""
        return list(self._log)

    @property
    def totals(self) -> LinkTotals:
        """The link's totals as they stand (docs/scenarios.md, "Link totals")."""
        dev = self._run
        assert dev.session is not None
        return dev.observer.totals(dev.session.link)

    @property
    def hello(self) -> HelloInfo | None:
        """The device's last hello."""
        return self._run.observer.hello


@asynccontextmanager
async def open_devices(
    scenario: Scenario,
    options: RunOptions,
    target: Target | Mapping[str, Target],
    extensions: tuple[Extension, ...] = (),
) -> AsyncIterator[dict[str, Device]]:
    """A session running `scenario` on its devices' targets (`target`: the one device's, or
    each device's by name), open once every target's stream is, with a handle on each device
    by name in the scenario's order; a problem opening it (no such port, a refused option)
    raises its UserError. Ctrl-C or SIGTERM, which the run catches and stops on, cancels the
    `async with` body and raises KeyboardInterrupt once the session has ended (drained, its
    record made)."""
    from harness.runner.run import run_scenario

    devices = {name: Device(name) for name in scenario.names}
    first = next(iter(devices.values()))
    seen: list[RunContext] = []
    failed: list[UserError] = []

    def take(item: Published) -> None:
        for device in devices.values():
            device._take(item)

    def end(why: str) -> None:
        for device in devices.values():
            device._end(why)

    async def session() -> None:
        try:
            result = await run_scenario(scenario, options, (*extensions, tap(take, seen)), target)
        except BaseExceptionGroup as group:
            if (error := found_in(group, UserError)) is None:
                raise
            failed.append(error)
            end(str(error))
            return
        except UserError as error:
            failed.append(error)
            end(str(error))
            return
        for device in devices.values():
            device.record = result.record
        if result.signal is not None:  # cancels the body (pytest-trio: the test), as Ctrl-C
            raise KeyboardInterrupt  # would; its waits are cancelled, not told the session ended
        end(result.record.error or f"the run's verdict: {result.record.verdict}")

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session)
            while not first._started and first._ended is None:
                await first._news.wait()
            if first._started:
                for device in devices.values():
                    device._ctx = seen[0]
                try:
                    yield devices
                finally:
                    seen[0].stop.set()
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        raise
    if not first._started:  # raised here, not in the nursery: the error alone, not a group
        raise failed[0] if failed else UserError(f"the device session ended: {first._ended}")


@asynccontextmanager
async def open_device(
    scenario: Scenario,
    options: RunOptions,
    target: Target | Mapping[str, Target],
    extensions: tuple[Extension, ...] = (),
) -> AsyncIterator[Device]:
    """`open_devices`' session, with a handle on its first device (a scenario of one: its
    only one)."""
    async with open_devices(scenario, options, target, extensions) as devices:
        yield next(iter(devices.values()))
