"""One run of a scenario: a single trio nursery owns the target, the fault relay, the host
session, the steps, the device watch's timer and every consumer, on trio's clock only (so a
MockClock runs it in virtual time). At the scenario's end the faults stop and the link drains;
then the verdict."""

from __future__ import annotations

import math
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial

import trio

from harness.errors import TargetError, UserError, found_in
from harness.faults import FaultConfig, LinkFaults
from harness.link import DeviceReset, HostEvent, SampleReceived
from harness.relay import FaultRelay
from harness.runner.bus import Bus
from harness.runner.console import Console, show_status, verdict_table
from harness.runner.context import DRAIN_MAX, Extension, RunContext, RunOptions
from harness.runner.observer import Observer
from harness.runner.record import (
    CommandRecord,
    DeviceInfo,
    ExpectationResult,
    LinkTotals,
    LogInfo,
    OtherDeviceInfo,
    ResetInfo,
    RunRecord,
    ScenarioInfo,
    SilenceInfo,
    write_json,
    write_junit,
)
from harness.runner.session import HostSession
from harness.runner.settings import SentSettings
from harness.scenario.model import Outage, Reset, Scenario, Send, SetLink, Step, WaitLog
from harness.scenario.units import format_duration
from harness.signals import stop_on_signal
from harness.targets import PortChange, Target, TargetEvent, make_target
from harness.targets.base import VirtualTime
from harness.transports.memory import memory_stream_pair
from harness.transports.wakeable import Wakeable

END_SETTLE = 1e-6
"""Seconds past the scenario's end when its end is taken (see run_scenario)."""


@dataclass(frozen=True, slots=True)
class RunResult:
    record: RunRecord
    exit_code: int
    signal: int | None = None
    """The signal (SIGINT, SIGTERM) the run caught and stopped on; None: no signal stopped it."""


async def _steps(
    scenario: Scenario,
    ctx: RunContext,
    target: Target,
    relay: FaultRelay,
    sent: SentSettings,
    console: Console,
) -> None:
    """Each step at its time; one that waits for a log line holds the ones after it until the
    line came or its timeout passed (its expectation says which)."""
    obs, session = ctx.observer, ctx.session
    assert session is not None
    for step in scenario.steps:
        await trio.sleep_until(ctx.origin + step.at)
        now = trio.current_time()
        if isinstance(step.action, WaitLog):
            # From its time in the file (a step the file fixes) or from now (one held by an
            # earlier wait), as its expectation's window says.
            since = obs.now(now) if step.after_wait else step.at
            arrived = obs.wait_for_log(step.action, since)
            obs.on_step(step, now)
            with trio.move_on_at(ctx.origin + since + step.action.timeout):
                await arrived.wait()
            if not arrived.is_set():
                console.say(
                    f"{obs.now(trio.current_time()):8.1f} s  {step.label}: no log line matching "
                    f"/{step.action.pattern.pattern}/ within {format_duration(step.action.timeout)}"
                )
            continue
        obs.on_step(step, now)
        if isinstance(step.action, Reset):
            await target.reset()  # the steps after it find the new boot
        else:
            _do(step, obs, session, target, relay, sent, now)


def _do(
    step: Step,
    obs: Observer,
    session: HostSession,
    target: Target,
    relay: FaultRelay,
    sent: SentSettings,
    now: float,
) -> None:
    match step.action:
        case Send(command=name, args=args):
            handle = session.send_command(name, args)
            sent.sent(name, args)
            obs.issued(handle, name, args, step.number, now)
        case SetLink(faults=faults):
            relay.set_faults(faults)
            target.set_line_rate(faults.to_host.rate)
        case Outage(stop=True):
            relay.stop_outage()
        case Outage(duration=duration):
            relay.start_outage(duration)


def _reapply(
    sent: SentSettings, obs: Observer, session: HostSession, console: Console, e: DeviceReset
) -> None:
    """The device booted anew with its defaults: send the scenario's settings again."""
    commands = sent.to_reapply()
    for name, args in commands:
        handle = session.send_command(name, args)
        obs.issued(handle, name, args, None, e.at, reapplied=True)
    if commands:
        shown = ", ".join(
            f"{name} " + " ".join(f"{k}={v:g}" for k, v in args.items()) for name, args in commands
        )
        console.say(f"{obs.now(e.at):8.1f} s  boot {e.new_boot}: re-applying {shown}")


async def _watch_device(obs: Observer, waker: Wakeable) -> None:
    """Run the device watch's checks when they fall due (the observer wakes it when they come
    earlier)."""
    while True:
        await waker.sleep(obs.origin + obs.watch.due())
        obs.check_device(trio.current_time())


def _drained(obs: Observer, session: HostSession, target: Target, delivered_at_start: int) -> bool:
    if obs.watch.silent is not None:
        return True  # a silent device has nothing in flight to wait for
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


def _clean(faults: LinkFaults) -> LinkFaults:
    """No faults, but the same line rate (a baud rate is not a fault)."""
    return LinkFaults(
        FaultConfig(rate=faults.to_host.rate), FaultConfig(rate=faults.to_device.rate)
    )


async def run_scenario(
    scenario: Scenario,
    options: RunOptions,
    extensions: tuple[Extension, ...] = (),
    target: Target | None = None,
) -> RunResult:
    """Run `scenario` on `target` (default: the one `options.target` names, with no extra
    settings), with `extensions` entered in order around it."""
    seed = options.seed_for(scenario)
    if target is None:
        target = make_target(options.target, scenario, seed, options.serial)
    undriven = "supply" in scenario.needs and "supply" not in target.capabilities
    for need in scenario.needs:
        if need not in target.capabilities and not (need == "supply" and target.name == "board"):
            raise UserError(
                f"{scenario.file}: needs {need}, which the {target.name} target cannot do"
            )
    if options.fast and "virtual_time" not in target.capabilities:
        raise UserError(
            f"--fast runs in virtual time, which needs the mock or the sim target (not {target.name})"
        )
    origin = trio.current_time()
    bus = Bus()
    observer = Observer(scenario, origin, bus, target.truth)
    ctx = RunContext(scenario, options, seed, origin, bus, observer, target)
    stop = ctx.stop
    stopped_at: float | None = None
    """Scenario seconds when Ctrl-C or SIGTERM stopped the run."""
    caught: list[int] = []
    wall = time.monotonic()
    error: str | None = None
    console = Console(options.out)
    console.say(
        f"running {scenario.file}: {scenario.name}, {_length(scenario.duration)}, seed {seed}, "
        f"{target.describe()}{' (virtual time)' if options.fast else ''}"
    )
    if undriven:
        console.say(
            f"{scenario.file}: its [[supply]] profile is not driven on the {target.name}: the "
            "bench must follow it (give --supply DRIVER:RESOURCE or --bench FILE, or "
            "--supply manual to be told when to set it)"
        )
    unsubscribe = bus.subscribe(console.take)
    sent = SentSettings()
    waker = Wakeable()
    observer.on_watch_change = waker.wake

    def on_target(e: TargetEvent) -> None:
        observer.on_target(e)
        if isinstance(e, PortChange) and e.state == "replugged" and ctx.session is not None:
            # Whatever is on the port now must say who it is (docs/scenarios.md).
            ctx.session.send_command("hello")

    async with AsyncExitStack() as stack:
        stack.callback(unsubscribe)
        for ext in extensions:
            await stack.enter_async_context(ext(ctx))
        async with trio.open_nursery() as nursery:
            device_stream = await target.start(nursery, origin, on_target)
            stack.push_async_callback(device_stream.aclose)  # a board's port is unlocked
            observer.device_opened(trio.current_time())
            host_end, relay_end = memory_stream_pair()
            relay = FaultRelay(scenario.link, seed, observer.on_fault)

            def on_host(e: HostEvent) -> None:
                observer.on_host(e)
                if isinstance(e, SampleReceived):
                    observer.check_recovery(session.link, observer.now(e.at))
                elif isinstance(e, DeviceReset):
                    _reapply(sent, observer, session, console, e)

            session = HostSession(host_end, on_host)
            ctx.session = session

            async def relay_then_stop() -> None:
                nonlocal error
                await relay.run(device_stream, relay_end)
                reason = await target.why_it_ended()
                ended = f"the device's stream ended at {trio.current_time() - origin:.1f} s"
                error = error or reason or ended
                nursery.cancel_scope.cancel()

            async def steps_or_error() -> None:
                nonlocal error
                try:
                    await _steps(scenario, ctx, target, relay, sent, console)
                except TargetError as exc:  # a reset that did not take: what came is kept
                    error = error or str(exc)
                    nursery.cancel_scope.cancel()

            nursery.start_soon(relay_then_stop)
            nursery.start_soon(session.run)
            nursery.start_soon(steps_or_error)
            nursery.start_soon(_watch_device, observer, waker)
            if options.status:
                nursery.start_soon(
                    show_status, console, observer, session, origin, scenario.duration
                )
            observer.emit(
                "run", 0.0, state="started", scenario=scenario.name, target=target.name, seed=seed
            )
            nursery.start_soon(partial(stop_on_signal, stop, on_signal=caught.append))
            with trio.move_on_at(origin + scenario.duration):
                await stop.wait()
            stopped_at = trio.current_time() - origin if stop.is_set() else None
            # A stopped bench's output goes off now, before the drain.
            unpowered = stop.is_set() and target.stop()
            # What falls due at the end's very instant (a sample closing at it) is the
            # scenario's, on the faults then in force: trio runs tasks due at one instant in
            # no fixed order, so the end is taken just after it.
            await trio.sleep(END_SETTLE)
            relay.set_faults(_clean(relay.faults))
            relay.stop_outage()
            observer.end_of_time(trio.current_time(), relay.faults)
            start = session.link.stats.samples
            with trio.move_on_after(0 if unpowered else DRAIN_MAX):
                while not _drained(observer, session, target, start):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        end = trio.current_time() - origin
        totals = observer.finish(session.link, end, stopped_at)
        verdict = "error" if error else observer.verdict
        if stop.is_set():
            # A signal ends a scenario before its end: interrupted. A run with no end (`harness
            # monitor`) stops so, and any run whose stop was asked for (RunContext.stop: the
            # pytest plugin's device session, after its test) is stopped.
            ended_early = bool(caught) and scenario.duration != math.inf
            verdict = "interrupted" if ended_early else "stopped"
        observer.emit("run", end, state="ended", verdict=verdict)
        record = _record(ctx, target, totals, time.monotonic() - wall, verdict, error)
        ctx.record = record
        if options.json:
            ctx.write_at_end(partial(write_json, record, options.json))
        if options.junit:
            ctx.write_at_end(partial(write_junit, record, options.junit))
    console.say(verdict_table(record))
    if ctx.unwritten:  # a report the CI expects and does not get: an error, whatever the verdict
        raise UserError("\n".join(ctx.unwritten))
    codes = {"pass": 0, "marginal": 1 if options.strict else 0, "stopped": 0, "fail": 1, "error": 2}
    # interrupted: the shell's code for the signal that stopped it (130 Ctrl-C, 143 SIGTERM)
    code = 128 + caught[0] if verdict == "interrupted" else codes[verdict]
    return RunResult(record, code, caught[0] if caught else None)


def _length(duration: float) -> str:
    return f"{duration:g} s" if math.isfinite(duration) else "until stopped"


def _record(
    ctx: RunContext,
    target: Target,
    link: LinkTotals,
    wall_seconds: float,
    verdict: str,
    error: str | None,
) -> RunRecord:
    scenario, obs = ctx.scenario, ctx.observer
    return RunRecord(
        scenario=ScenarioInfo(
            scenario.name,
            str(scenario.path),
            scenario.description,
            scenario.duration if math.isfinite(scenario.duration) else None,
        ),
        target=target.name,
        seed=ctx.seed,
        started=ctx.started.isoformat(timespec="seconds"),
        wall_seconds=round(wall_seconds, 3),
        virtual_time=ctx.options.fast,
        verdict=verdict,
        strict=ctx.options.strict,
        error=error,
        device=DeviceInfo(
            hello=obs.hello,
            boots=sorted(obs.boots),
            resets=[
                ResetInfo(
                    round(r.at, 3),
                    r.old_boot,
                    r.new_boot,
                    r.samples_lost,
                    None if r.time_lost is None else round(r.time_lost, 3),
                )
                for r in obs.reset_log
            ],
            silences=[
                SilenceInfo(
                    round(s.at, 3),
                    None if s.last_sample is None else round(s.last_sample, 3),
                    None if s.until is None else round(s.until, 3),
                )
                for s in obs.watch.silences
            ],
            other_devices=[OtherDeviceInfo(round(o.at, 3), o.detail) for o in obs.watch.others],
            log=[LogInfo(round(at, 3), text) for at, text in obs.log],
            log_lines=obs.log_lines,
        ),
        expectations=[ExpectationResult(**ev.as_dict()) for ev in obs.evaluators],
        checks=[
            ExpectationResult(0, label, o.state, o.measured, o.detail) for label, o in obs.checks
        ],
        link=link,
        injected={k: obs.injected.get(k, 0) for k in sorted(obs.injected)},
        injected_by_direction={d: dict(c) for d, c in obs.injected_by_direction.items()},
        commands=[
            CommandRecord(
                handle=h,
                name=c.name,
                args=c.args,
                step=c.step,
                issued=round(c.issued, 4),
                outcome=c.outcome,
                latency=None if c.latency is None else round(c.latency, 4),
                reason=c.reason,
                reapplied=c.reapplied,
            )
            for h, c in obs.commands.items()
        ],
        supply=obs.supply.record() if obs.supply.opened else None,
    )


def run(
    scenario: Scenario,
    options: RunOptions,
    extensions: tuple[Extension, ...] = (),
    target: Target | None = None,
) -> RunResult:
    """Run in a fresh trio loop: in virtual time on the target's own clock when `options.fast`
    (the mock's jumps ahead whenever every task waits, the sim's is the simulator's time), else
    in real time."""
    clock = None
    if options.fast:
        if target is None:
            target = make_target(
                options.target, scenario, options.seed_for(scenario), options.serial
            )
        if isinstance(target, VirtualTime):
            clock = target.virtual_clock()  # else run_scenario refuses --fast
    try:
        return trio.run(run_scenario, scenario, options, extensions, target, clock=clock)
    except BaseExceptionGroup as group:
        if (error := found_in(group, UserError)) is not None:
            raise error from None
        if group.subgroup(KeyboardInterrupt) is not None:  # Ctrl-C while the target started
            raise KeyboardInterrupt from None
        raise
