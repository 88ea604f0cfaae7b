"""One run of a scenario: a single trio nursery owns the target, the fault relay, the host
session, the steps and every consumer, on trio's clock only (so a MockClock runs it in virtual
time). At the scenario's end the faults stop and the link drains; then the verdict."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import trio

from harness.bus import Bus, Published
from harness.errors import UserError, user_error_in
from harness.faults import FaultConfig
from harness.link import HostEvent, SampleReceived
from harness.relay import FaultRelay
from harness.runner.console import show_status, verdict_table
from harness.runner.observer import Observer
from harness.runner.record import write_json, write_junit
from harness.runner.session import HostSession
from harness.scenario.model import LinkFaults, Outage, Reset, Scenario, Send, SetLink, Step
from harness.store.writer import Retention
from harness.targets import TARGETS, Target
from harness.targets.board import BoardTarget
from harness.targets.mock import MockTarget
from harness.transports.memory import memory_stream_pair

DRAIN_MAX = 5.0
"""Seconds the run waits after the scenario for what is still in flight (the link's recovery
bound is 3.5 s)."""

Extension = Callable[["RunContext"], AbstractAsyncContextManager[None]]
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


@dataclass
class RunOptions:
    target: str = "mock"
    serial: str | None = None
    seed: int | None = None
    db: Path | None = None
    json: Path | None = None
    junit: Path | None = None
    fast: bool = False
    view: bool = False
    bind: str = "127.0.0.1:8000"
    status: bool = False
    retention: Retention = field(default_factory=Retention)
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class RunContext:
    """What extensions (the store, the viewer) get to see of a run."""

    scenario: Scenario
    options: RunOptions
    seed: int
    origin: float
    bus: Bus
    observer: Observer
    session: HostSession | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    record: dict[str, Any] | None = None
    run_id: int | None = None
    store: Any = None
    """The store's writer while one is attached (for its counters)."""
    target: Any = None
    """The Target the run talks to."""


@dataclass
class RunResult:
    record: dict[str, Any]
    exit_code: int


def make_target(
    options: RunOptions, scenario: Scenario, seed: int, observer_ref: list[Observer]
) -> Target:
    if options.target not in TARGETS:
        raise UserError(
            f"--target {options.target}: unknown target; choose one of {', '.join(TARGETS)}"
        )
    if options.target == "mock":
        return MockTarget(scenario, seed, lambda e: observer_ref[0].on_device(e))
    if options.target == "board":

        def on_outage(start: float, end: float | None) -> None:
            obs = observer_ref[0]
            obs.emit(
                "fault",
                obs.now(end or start),
                direction="both",
                fault="unplugged" if end is None else "replugged",
                what="port",
                seq=None,
            )

        return BoardTarget(options.serial, on_outage)
    from harness.targets.sim import SimTarget

    eeprom = options.db.with_name(options.db.stem + "-sim.eeprom") if options.db else None
    return SimTarget(scenario, seed, eeprom)


async def _steps(scenario: Scenario, ctx: RunContext, target: Target, relay: FaultRelay) -> None:
    obs, session = ctx.observer, ctx.session
    assert session is not None
    for step in scenario.steps:
        await trio.sleep_until(ctx.origin + step.at)
        now = trio.current_time()
        obs.on_step(step, now)
        _do(step, obs, session, target, relay, now)


def _do(
    step: Step, obs: Observer, session: HostSession, target: Target, relay: FaultRelay, now: float
) -> None:
    match step.action:
        case Send(command=name, args=args):
            handle = session.send_command(name, args)
            obs.issued(handle, name, args, step.number, now)
        case SetLink(faults=faults):
            relay.set_faults(faults)
            if target.truth is not None:  # the mock's UART runs at the line's speed
                target.truth.uart_rate = faults.to_host.rate
        case Outage(stop=True):
            relay.stop_outage()
        case Outage(duration=duration):
            relay.start_outage(duration)
        case Reset():
            target.reset()


def _drained(obs: Observer, session: HostSession, target: Target, delivered_at_start: int) -> bool:
    link = session.link
    if not link.synced or link.gap_open or link.commands_pending:
        return False
    truth = target.truth
    if truth is not None:
        boot = truth.boot
        if boot is None:
            return True
        tally = obs.boots.get(boot)
        return (tally.delivered if tally else 0) >= obs.produced().get(boot, 0)
    return link.stats.samples > delivered_at_start


async def _watch_signals(stop: trio.Event) -> None:
    """Ctrl-C or SIGTERM ends the run early but cleanly: the link drains, the store and the
    reports get the record. (Only the main thread can receive signals.)"""
    if threading.current_thread() is not threading.main_thread():
        return
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()
            return


def _default_extensions(options: RunOptions) -> tuple[Extension, ...]:
    found: list[Extension] = []
    if options.view:  # first: a port in use stops the run before the store records it
        from harness.viewer.server import viewer

        found.append(viewer(options))
    if options.db is not None:
        from harness.store.recorder import recorder

        found.append(recorder(options.db, options.retention))
    return tuple(found)


def _clean(faults: LinkFaults) -> LinkFaults:
    """No faults, but the same line rate (a baud rate is not a fault)."""
    return LinkFaults(
        FaultConfig(rate=faults.to_host.rate), FaultConfig(rate=faults.to_device.rate)
    )


async def run_scenario(
    scenario: Scenario, options: RunOptions, extensions: tuple[Extension, ...] = ()
) -> RunResult:
    seed = scenario.seed if options.seed is None else options.seed
    bus = Bus()
    observer_ref: list[Observer] = []
    target = make_target(options, scenario, seed, observer_ref)
    for need in scenario.needs:
        if need not in target.capabilities and not (need == "supply" and target.name == "board"):
            raise UserError(
                f"{scenario.file}: needs {need}, which the {target.name} target cannot do"
            )
    if options.fast and "virtual_time" not in target.capabilities:
        raise UserError(
            f"--fast runs in virtual time, which needs the mock target (not {target.name})"
        )
    origin = trio.current_time()
    observer = Observer(scenario, origin, bus, target.truth)
    observer_ref.append(observer)
    ctx = RunContext(scenario, options, seed, origin, bus, observer, target=target)
    stop = trio.Event()
    wall = time.monotonic()
    error: str | None = None
    out = options.out
    print(
        f"running {scenario.file}: {scenario.name}, {scenario.duration:g} s, seed {seed}, "
        f"{target.describe()}{' (virtual time)' if options.fast else ''}",
        file=out,
        flush=True,
    )
    async with AsyncExitStack() as stack:
        for ext in (*_default_extensions(options), *extensions):
            await stack.enter_async_context(ext(ctx))
        async with trio.open_nursery() as nursery:
            device_stream = await target.start(nursery, origin)
            stack.push_async_callback(device_stream.aclose)  # a board's port is unlocked
            host_end, relay_end = memory_stream_pair()
            relay = FaultRelay(scenario.link, seed, observer.on_fault)

            def on_host(e: HostEvent) -> None:
                observer.on_host(e)
                if isinstance(e, SampleReceived):
                    observer.check_recovery(session.link, observer.now(e.at))

            session = HostSession(host_end, on_host)
            ctx.session = session

            async def relay_then_stop() -> None:
                nonlocal error
                await relay.run(device_stream, relay_end)
                why = getattr(target, "why_it_ended", None)
                reason = await why() if why is not None else None
                ended = f"the device's stream ended at {trio.current_time() - origin:.1f} s"
                error = error or reason or ended
                nursery.cancel_scope.cancel()

            nursery.start_soon(relay_then_stop)
            nursery.start_soon(session.run)
            nursery.start_soon(_steps, scenario, ctx, target, relay)
            if options.status:
                nursery.start_soon(show_status, observer, session, origin, scenario.duration, out)
            observer.emit(
                "run", 0.0, state="started", scenario=scenario.name, target=target.name, seed=seed
            )
            nursery.start_soon(_watch_signals, stop)
            with trio.move_on_at(origin + scenario.duration):
                await stop.wait()
            observer.end_of_time()
            relay.set_faults(_clean(relay.faults))
            relay.stop_outage()
            start = session.link.stats.samples
            with trio.move_on_after(DRAIN_MAX):
                while not _drained(observer, session, target, start):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        end = trio.current_time() - origin
        totals = observer.finish(session.link, end)
        verdict = "error" if error else "pass" if observer.passed else "fail"
        if stop.is_set():
            verdict = "stopped" if scenario.duration == math.inf else "interrupted"
        observer.emit("run", end, state="ended", verdict=verdict)
        record = _record(
            scenario, target, seed, options, observer, totals.as_dict(), ctx, wall, verdict, error
        )
        ctx.record = record
        if options.json:
            write_json(record, options.json)
        if options.junit:
            write_junit(record, options.junit)
    print(verdict_table(record), file=out, flush=True)
    codes = {"pass": 0, "stopped": 0, "fail": 1, "error": 2, "interrupted": 130}
    return RunResult(record, codes[verdict])


def _record(
    scenario: Scenario,
    target: Target,
    seed: int,
    options: RunOptions,
    obs: Observer,
    link: dict[str, int],
    ctx: RunContext,
    wall: float,
    verdict: str,
    error: str | None,
) -> dict[str, Any]:
    injected = {k: obs.injected.get(k, 0) for k in sorted(obs.injected)}
    return {
        "scenario": {
            "name": scenario.name,
            "file": str(scenario.path),
            "description": scenario.description,
            "duration": scenario.duration,
        },
        "target": target.name,
        "seed": seed,
        "started": ctx.started.isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - wall, 3),
        "virtual_time": options.fast,
        "verdict": verdict,
        "error": error,
        "device": {
            "hello": obs.hello,
            "boots": sorted(obs.boots),
            "resets": [
                {
                    "at": round(r.at, 3),
                    "old_boot": r.old_boot,
                    "new_boot": r.new_boot,
                    "samples_lost": r.samples_lost,
                    "time_lost": None if r.time_lost is None else round(r.time_lost, 3),
                }
                for r in obs.reset_log
            ],
        },
        "expectations": [ev.as_dict() for ev in obs.evaluators],
        "link": link,
        "injected": injected,
        "injected_by_direction": {d: dict(c) for d, c in obs.injected_by_direction.items()},
        "commands": [
            {
                "handle": h,
                "name": c.name,
                "args": c.args,
                "step": c.step,
                "issued": round(c.issued, 4),
                "outcome": c.outcome,
                "latency": None if c.latency is None else round(c.latency, 4),
                "reason": c.reason,
            }
            for h, c in obs.commands.items()
        ],
    }


def run(
    scenario: Scenario, options: RunOptions, extensions: tuple[Extension, ...] = ()
) -> RunResult:
    """Run in a fresh trio loop: under a MockClock that jumps ahead whenever every task waits
    when `options.fast` (virtual time), else in real time."""
    clock = None
    if options.fast:
        from trio.testing import MockClock  # only here: it imports pytest when installed (~6 MB)

        clock = MockClock(autojump_threshold=0)
    try:
        return trio.run(run_scenario, scenario, options, extensions, clock=clock)
    except BaseExceptionGroup as group:
        if (error := user_error_in(group)) is not None:
            raise error from None
        if group.subgroup(KeyboardInterrupt) is not None:  # Ctrl-C while the target started
            raise KeyboardInterrupt from None
        raise
