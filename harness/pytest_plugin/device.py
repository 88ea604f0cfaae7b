"""A live session with the device under test, for tests written in Python: a run of a scenario
(by default `harness monitor`'s endless one: a clean link, a steady 5 V rail) in the caller's
trio loop, with a handle to send commands and await their acks, await samples and log lines,
and read the link totals as they stand. The session ends, drained and with its record, when
its `async with` is left."""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from harness.errors import UserError, found_in
from harness.link import Sample
from harness.runner.bus import Published, RunEvent, SampleEvent
from harness.runner.context import Extension, RunContext, RunOptions, tap
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
    """The test's handle on the session. Times are the session's seconds (0: when it started),
    in virtual time under `--powerhil-fast`."""

    def __init__(self) -> None:
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
        """A bus subscriber: keeps what the test may await, and wakes its waits."""
        if isinstance(item, SampleEvent):
            for taken in self._waits:
                taken.append(item.sample)
        elif isinstance(item, RunEvent):
            if item.kind == "log":
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
    def _run(self) -> RunContext:
        assert self._ctx is not None and self._ctx.session is not None
        return self._ctx

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
        ctx = self._run
        assert ctx.session is not None
        handle = ctx.session.send_command(name, args)
        ctx.observer.issued(handle, name, args, None, trio.current_time())
        shown = " ".join([name, *(f"{k}={v}" for k, v in args.items())])
        sent = ctx.observer.commands[handle]
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
        ctx = self._run
        assert ctx.session is not None
        return ctx.observer.totals(ctx.session.link)

    @property
    def hello(self) -> HelloInfo | None:
        """The device's last hello."""
        return self._run.observer.hello


@asynccontextmanager
async def open_device(
    scenario: Scenario,
    options: RunOptions,
    target: Target,
    extensions: tuple[Extension, ...] = (),
) -> AsyncIterator[Device]:
    """A session running `scenario` on `target`, open once the target's stream is; a problem
    opening it (no such port, a refused option) raises its UserError. Ctrl-C or SIGTERM, which
    the run catches and stops on, cancels the `async with` body and raises KeyboardInterrupt
    once the session has ended (drained, its record made)."""
    from harness.runner.run import run_scenario

    device = Device()
    seen: list[RunContext] = []
    failed: list[UserError] = []

    async def session() -> None:
        try:
            result = await run_scenario(
                scenario, options, (*extensions, tap(device._take, seen)), target
            )
        except BaseExceptionGroup as group:
            if (error := found_in(group, UserError)) is None:
                raise
            failed.append(error)
            device._end(str(error))
            return
        except UserError as error:
            failed.append(error)
            device._end(str(error))
            return
        device.record = result.record
        if result.signal is not None:  # cancels the body (pytest-trio: the test), as Ctrl-C
            raise KeyboardInterrupt  # would; its waits are cancelled, not told the session ended
        device._end(result.record.error or f"the run's verdict: {result.record.verdict}")

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session)
            while not device._started and device._ended is None:
                await device._news.wait()
            if device._started:
                device._ctx = seen[0]
                try:
                    yield device
                finally:
                    seen[0].stop.set()
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        raise
    if not device._started:  # raised here, not in the nursery: the error alone, not a group
        raise failed[0] if failed else UserError(f"the device session ended: {device._ended}")
