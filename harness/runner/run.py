"""One run of a scenario: a single trio nursery owns the target, the fault relay, the host
session, the steps, the device watch's timer and every consumer, on trio's clock only (so a
MockClock runs it in virtual time). At the scenario's end the faults stop and the link drains;
then the verdict."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from functools import partial

import trio

from harness.errors import TargetError, UserError, found_in
from harness.faults import FaultConfig, LinkFaults
from harness.link import DeviceReset, HostEvent, SampleReceived
from harness.relay import FaultRelay
from harness.runner.bus import Bus
from harness.runner.console import Console, show_status, verdict_table
from harness.runner.context import DRAIN_MAX, DeviceRun, Extension, RunContext, RunOptions
from harness.runner.observer import Observer
from harness.runner.record import (
    CommandRecord,
    DeviceInfo,
    DeviceRecord,
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
from harness.scenario.model import (
    DEFAULT_DEVICE,
    Outage,
    Reset,
    Scenario,
    Send,
    SetLink,
    Step,
    WaitLog,
)
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
    dev: DeviceRun, origin: float, relay: FaultRelay | None, sent: SentSettings, console: Console
) -> None:
    """Each of the device's steps at its time; one that waits for a log line holds the ones
    after it until the line came or its timeout passed (its expectation says which)."""
    obs, session, target = dev.observer, dev.session, dev.target
    assert session is not None and target is not None
    for step in dev.scenario.steps:
        await trio.sleep_until(origin + step.at)
        now = trio.current_time()
        if isinstance(step.action, WaitLog):
            # From its time in the file (a step the file fixes) or from now (one held by an
            # earlier wait), as its expectation's window says.
            since = obs.now(now) if step.after_wait else step.at
            arrived = obs.wait_for_log(step.action, since)
            obs.on_step(step, now)
            with trio.move_on_at(origin + since + step.action.timeout):
                await arrived.wait()
            if not arrived.is_set():
                console.say(
                    f"{obs.now(trio.current_time()):8.1f} s  {console.named(dev.name)}"
                    f"{step.label}: no log line matching /{step.action.pattern.pattern}/ within "
                    f"{format_duration(step.action.timeout)}"
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
    relay: FaultRelay | None,
    sent: SentSettings,
    now: float,
) -> None:
    match step.action:
        case Send(command=name, args=args):
            handle = session.send_command(name, args)
            sent.sent(name, args)
            obs.issued(handle, name, args, step.number, now)
        case SetLink(faults=faults):
            if relay is not None:  # (without one, the link's faults are none throughout)
                relay.set_faults(faults)
            target.set_line_rate(faults.to_host.rate)
        case Outage(stop=True) if relay is not None:
            relay.stop_outage()
        case Outage(duration=duration) if relay is not None:
            relay.start_outage(duration)


def _reapply(
    sent: SentSettings,
    obs: Observer,
    session: HostSession,
    console: Console,
    e: DeviceReset,
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
        console.say(
            f"{obs.now(e.at):8.1f} s  {console.named(obs.device)}boot {e.new_boot}: "
            f"re-applying {shown}"
        )


async def _watch_device(obs: Observer, waker: Wakeable) -> None:
    """Run the device watch's checks when they fall due (the observer wakes it when they come
    earlier)."""
    while True:
        await waker.sleep(obs.origin + obs.watch.due())
        obs.check_device(trio.current_time())


def _drained(dev: DeviceRun, delivered_at_start: int) -> bool:
    obs, session, target = dev.observer, dev.session, dev.target
    if dev.error is not None or session is None or target is None:
        return True  # its link ended: nothing more comes
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


def needs_relay(scenario: Scenario, target: Target) -> bool:
    """Whether a device's link goes through the fault relay: always on the mock (whose
    in-process stream has no line of its own: the relay is its line's rate), and elsewhere
    unless nothing is ever injected on it (no random fault, delay or rate limit, in its link
    or any link step, and no outage), when the host reads the target's stream itself."""
    if target.name == "mock":
        return True
    links = [scenario.link]
    for step in scenario.steps:
        if isinstance(step.action, Outage):
            return True
        if isinstance(step.action, SetLink):
            links.append(step.action.faults)
    return any(
        c.draws or c.delay or c.rate is not None
        for faults in links
        for c in (faults.to_host, faults.to_device)
    )


def _clean(faults: LinkFaults) -> LinkFaults:
    """No faults, but the same line rate (a baud rate is not a fault)."""
    return LinkFaults(
        FaultConfig(rate=faults.to_host.rate), FaultConfig(rate=faults.to_device.rate)
    )


def device_seed(seed: int, index: int) -> int:
    """The seed of a run's device number `index` (from 0): the run's for the first, so a
    scenario of one device runs as it always did, and the next ones for the others (their
    noise and faults differ)."""
    return seed if index == 0 else (seed + index) % 2**63


def _targets(
    scenario: Scenario, options: RunOptions, target: Target | Mapping[str, Target] | None
) -> dict[str, Target]:
    """Each device's target by name: the ones given, else the one `options` names for it."""
    seed = options.seed_for(scenario)
    if target is None:
        return {
            d.name: make_target(
                d.target or options.target,
                scenario.for_device(d.name),
                device_seed(seed, i),
                options.serial_for(d),
            )
            for i, d in enumerate(scenario.devices)
        }
    if not isinstance(target, Mapping):
        (only,) = scenario.names
        return {only: target}
    return {name: target[name] for name in scenario.names}


class _Devices:
    """The run's devices and when they are all gone (each one's link ended)."""

    def __init__(self, devices: dict[str, DeviceRun]) -> None:
        self.devices = devices
        self.all_ended = trio.Event()

    def ended(self, dev: DeviceRun, why: str) -> None:
        """The device's link ended: said at once (the others go on), the run's end when it was
        the last."""
        if dev.error is None:
            dev.error = why
            dev.observer.emit(
                "device", dev.observer.now(trio.current_time()), state="ended", why=why
            )
        if all(d.error is not None for d in self.devices.values()):
            self.all_ended.set()


async def _run_device(
    dev: DeviceRun,
    ctx: RunContext,
    console: Console,
    devices: _Devices,
    *,
    task_status: trio.TaskStatus[trio.abc.Stream] = trio.TASK_STATUS_IGNORED,
) -> None:
    """One device's part of the run, in its own nursery: its target, fault relay, host
    session, steps and watch. Its stream, once open, is handed to the run (which closes it
    after the run); its link ending stops this device alone."""
    obs, target, origin = dev.observer, dev.target, ctx.origin
    assert target is not None
    sent = SentSettings()
    waker = Wakeable()
    obs.on_watch_change = waker.wake

    def on_target(e: TargetEvent) -> None:
        obs.on_target(e)
        if isinstance(e, PortChange) and e.state == "replugged" and dev.session is not None:
            # Whatever is on the port now must say who it is (docs/scenarios.md).
            dev.session.send_command("hello")

    async with trio.open_nursery() as nursery:
        try:
            device_stream = await target.start(nursery, origin, on_target)
        except (UserError, TargetError) as exc:  # which of several could not start
            if len(ctx.devices) == 1:
                raise
            raise type(exc)(f"{dev.name}: {exc}") from None
        obs.device_opened(trio.current_time())
        relay: FaultRelay | None = None
        host_end = device_stream
        if needs_relay(dev.scenario, target):
            host_end, relay_end = memory_stream_pair()
            relay = FaultRelay(dev.scenario.link, dev.seed, obs.on_fault)
        dev.relay = relay

        def on_host(e: HostEvent) -> None:
            obs.on_host(e)
            if isinstance(e, SampleReceived):
                obs.check_recovery(session.link, obs.now(e.at))
            elif isinstance(e, DeviceReset):
                _reapply(sent, obs, session, console, e)

        session = HostSession(host_end, on_host)
        dev.session = session
        if dev.observer is ctx.observer:
            ctx.session = session

        async def link_then_stop() -> None:
            """The link until the device's stream ends (through the relay, or the session
            on the stream itself): then this device stops, why said."""
            broke = None
            if relay is not None:
                await relay.run(device_stream, relay_end)  # (the session reads its other end)
            else:
                try:
                    await session.run()
                except TargetError as exc:
                    broke = str(exc)
            # the target's reason first: a sim that died says so, beyond the broken stream
            reason = await target.why_it_ended() or broke
            ended = f"the device's stream ended at {trio.current_time() - origin:.1f} s"
            devices.ended(dev, reason or ended)
            nursery.cancel_scope.cancel()

        async def steps_or_error() -> None:
            try:
                await _steps(dev, origin, relay, sent, console)
            except TargetError as exc:  # a reset that did not take: what came is kept
                devices.ended(dev, str(exc))
                nursery.cancel_scope.cancel()

        nursery.start_soon(link_then_stop)
        if relay is not None:
            nursery.start_soon(session.run)
        nursery.start_soon(steps_or_error)
        nursery.start_soon(_watch_device, obs, waker)
        task_status.started(device_stream)


async def run_scenario(
    scenario: Scenario,
    options: RunOptions,
    extensions: tuple[Extension, ...] = (),
    target: Target | Mapping[str, Target] | None = None,
) -> RunResult:
    """Run `scenario` on its devices' targets (`target`: the one device's, or each device's by
    name; default: the ones `options` names, with no extra settings), with `extensions`
    entered in order around it."""
    seed = options.seed_for(scenario)
    targets = _targets(scenario, options, target)
    for name, t in targets.items():
        _refuse_unfit(scenario.for_device(name), name, t, options)
    _refuse_shared_ports(scenario, options, targets)
    origin = trio.current_time()
    bus = Bus()
    devices: dict[str, DeviceRun] = {}
    for i, (name, t) in enumerate(targets.items()):
        view = scenario.for_device(name)
        obs = Observer(view, origin, bus, t.truth, name)
        devices[name] = DeviceRun(name, view, device_seed(seed, i), t, obs)
    first = next(iter(devices.values()))
    ctx = RunContext(
        scenario, options, seed, origin, bus, first.observer, first.target, devices=devices
    )
    gone = _Devices(devices)
    stop = ctx.stop
    stopped_at: float | None = None
    """Scenario seconds when Ctrl-C or SIGTERM stopped the run."""
    caught: list[int] = []
    wall = time.monotonic()
    console = Console(options.out, several=len(devices) > 1)
    fast = " (virtual time)" if options.fast else ""
    console.say(
        f"running {scenario.file}: {scenario.name}, {_length(scenario.duration)}, seed {seed}, "
        f"{_describe(targets)}{fast}"
    )
    for name, t in targets.items():
        if "supply" in scenario.needs and "supply" not in t.capabilities:
            console.say(
                f"{scenario.file}: {console.named(name)}its [[supply]] profile is not driven on "
                f"the {t.name}: the bench must follow it (give --supply DRIVER:RESOURCE or "
                "--bench FILE, or --supply manual to be told when to set it)"
            )
    unsubscribe = bus.subscribe(console.take)

    async with AsyncExitStack() as stack:
        stack.callback(unsubscribe)
        for ext in extensions:
            await stack.enter_async_context(ext(ctx))
        async with trio.open_nursery() as nursery:
            for dev in devices.values():
                device_stream = await nursery.start(_run_device, dev, ctx, console, gone)
                stack.push_async_callback(device_stream.aclose)  # a board's port is unlocked
            first.observer.emit(  # every device's stream is open, its session running
                "run",
                0.0,
                state="started",
                scenario=scenario.name,
                target=_kinds(targets),
                seed=seed,
            )
            if options.status:
                nursery.start_soon(
                    show_status, console, first, origin, scenario.duration, len(devices)
                )
            nursery.start_soon(partial(stop_on_signal, stop, on_signal=caught.append))
            with trio.move_on_at(origin + scenario.duration):
                async with trio.open_nursery() as until:  # the end, a stop, or no device left

                    async def first_of(event: trio.Event) -> None:
                        await event.wait()
                        until.cancel_scope.cancel()

                    until.start_soon(first_of, stop)
                    until.start_soon(first_of, gone.all_ended)
            stopped_at = trio.current_time() - origin if stop.is_set() else None
            # A stopped bench's output goes off now, before the drain.
            unpowered = stop.is_set() and all([t.stop() for t in targets.values()])
            # What falls due at the end's very instant (a sample closing at it) is the
            # scenario's, on the faults then in force: trio runs tasks due at one instant in
            # no fixed order, so the end is taken just after it.
            await trio.sleep(END_SETTLE)
            starts: dict[str, int] = {}
            for dev in devices.values():
                if dev.session is None:
                    continue
                faults = dev.scenario.link  # a link without a relay is clean throughout
                if dev.relay is not None:
                    dev.relay.set_faults(_clean(dev.relay.faults))
                    dev.relay.stop_outage()
                    faults = dev.relay.faults
                dev.observer.end_of_time(trio.current_time(), faults)
                starts[dev.name] = dev.session.link.stats.samples
            with trio.move_on_after(0 if unpowered else DRAIN_MAX):
                while not all(_drained(d, starts.get(d.name, 0)) for d in devices.values()):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        end = trio.current_time() - origin
        sections = []
        for dev in devices.values():
            assert dev.session is not None
            totals = dev.observer.finish(dev.session.link, end, stopped_at)
            state = "error" if dev.error else dev.observer.verdict
            port = options.serial_for(dev.scenario.devices[0])
            sections.append(_section(dev, totals, state, port))
        verdict = _worst([d.verdict for d in sections])
        error = _errors(sections)
        if stop.is_set():
            # A signal ends a scenario before its end: interrupted. A run with no end (`harness
            # monitor`) stops so, and any run whose stop was asked for (RunContext.stop: the
            # pytest plugin's device session, after its test) is stopped.
            ended_early = bool(caught) and scenario.duration != math.inf
            verdict = "interrupted" if ended_early else "stopped"
        first.observer.emit("run", end, state="ended", verdict=verdict)
        record = _record(ctx, sections, _kinds(targets), time.monotonic() - wall, verdict, error)
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


def _refuse_shared_ports(
    scenario: Scenario, options: RunOptions, targets: dict[str, Target]
) -> None:
    """Several boards are each named by their port (found by USB id, two could take one
    board), and no port is two devices'."""
    if len(targets) == 1:
        return
    taken: dict[str, str] = {}
    for d in scenario.devices:
        if targets[d.name].name != "board":
            continue
        port = options.serial_for(d)
        if port is None:
            raise UserError(
                f"{d.name}: a board of several is known by its port, not found by its USB id: "
                f"give --serial {d.name}=PATH (or serial in its [[device]] entry)"
            )
        if port in taken:
            raise UserError(f"--serial: {taken[port]} and {d.name} both name {port}")
        taken[port] = d.name


def _refuse_unfit(scenario: Scenario, name: str, target: Target, options: RunOptions) -> None:
    """One line before anything starts if the device's target cannot run what its view of
    the scenario needs."""
    who = f"{name}'s " if name != DEFAULT_DEVICE else ""
    for need in scenario.needs:
        if need not in target.capabilities and not (need == "supply" and target.name == "board"):
            raise UserError(
                f"{scenario.file}: needs {need}, which {who or 'the '}{target.name} target "
                "cannot do"
            )
    if options.fast and "virtual_time" not in target.capabilities:
        raise UserError(
            f"--fast runs in virtual time, which needs the mock or the sim target "
            f"(not {who}{target.name})"
        )


def _describe(targets: dict[str, Target]) -> str:
    if len(targets) == 1:
        return next(iter(targets.values())).describe()
    return f"{len(targets)} devices: " + ", ".join(
        f"{name} on {t.describe()}" for name, t in targets.items()
    )


def _kinds(targets: dict[str, Target]) -> str:
    """The target kinds the run's devices are on ("mock"; "mock, board")."""
    return ", ".join(dict.fromkeys(t.name for t in targets.values()))


VERDICT_ORDER = ("pass", "marginal", "fail", "error")


def _worst(verdicts: list[str]) -> str:
    return max(verdicts, key=VERDICT_ORDER.index)


def _errors(sections: list[DeviceRecord]) -> str | None:
    """The run's error line: the one device's error, or each failed device's, by name."""
    if len(sections) == 1:
        return sections[0].error
    failed = [f"{d.name}: {d.error}" for d in sections if d.error]
    return "; ".join(failed) or None


def _length(duration: float) -> str:
    return f"{duration:g} s" if math.isfinite(duration) else "until stopped"


def _section(dev: DeviceRun, link: LinkTotals, verdict: str, port: str | None) -> DeviceRecord:
    obs, target = dev.observer, dev.target
    assert target is not None
    return DeviceRecord(
        name=dev.name,
        target=target.name,
        verdict=verdict,
        error=dev.error,
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
        port=port if target.name == "board" else None,
    )


def _record(
    ctx: RunContext,
    sections: list[DeviceRecord],
    target: str,
    wall_seconds: float,
    verdict: str,
    error: str | None,
) -> RunRecord:
    """The run's record: with one device, its section's fields at the top as well; with
    several, every device's expectations, checks and commands by name, and the link's sums."""
    scenario = ctx.scenario
    first = sections[0]
    if len(sections) == 1:
        expectations, checks, commands = first.expectations, first.checks, first.commands
        link, injected, by_direction = first.link, first.injected, first.injected_by_direction
    else:
        expectations = [_named(e, d.name) for d in sections for e in d.expectations]
        checks = [_named(e, d.name) for d in sections for e in d.checks]
        commands = [replace(c, device=d.name) for d in sections for c in d.commands]
        link = _summed([d.link for d in sections])
        injected = dict(sum((Counter(d.injected) for d in sections), Counter()))
        by_direction = {}
        for d in sections:
            for direction, counts in d.injected_by_direction.items():
                merged = Counter(by_direction.get(direction, {})) + Counter(counts)
                by_direction[direction] = dict(merged)
    return RunRecord(
        scenario=ScenarioInfo(
            scenario.name,
            str(scenario.path),
            scenario.description,
            scenario.duration if math.isfinite(scenario.duration) else None,
        ),
        target=target,
        seed=ctx.seed,
        started=ctx.started.isoformat(timespec="seconds"),
        wall_seconds=round(wall_seconds, 3),
        virtual_time=ctx.options.fast,
        verdict=verdict,
        strict=ctx.options.strict,
        error=error,
        device=first.device,
        expectations=expectations,
        checks=checks,
        link=link,
        injected={k: injected[k] for k in sorted(injected)},
        injected_by_direction=by_direction,
        commands=commands,
        supply=first.supply,
        devices=sections,
    )


def _named(e: ExpectationResult, device: str) -> ExpectationResult:
    return replace(e, label=f"{device}: {e.label}", device=device)


def _summed(totals: list[LinkTotals]) -> LinkTotals:
    out = LinkTotals()
    for t in totals:
        for key, value in t.as_dict().items():
            setattr(out, key, getattr(out, key) + value)
    return out


def run(
    scenario: Scenario,
    options: RunOptions,
    extensions: tuple[Extension, ...] = (),
    target: Target | Mapping[str, Target] | None = None,
) -> RunResult:
    """Run in a fresh trio loop: in virtual time on the targets' own clock when `options.fast`
    (the mock's jumps ahead whenever every task waits, the sim's is the simulator's time), else
    in real time."""
    clock = None
    targets = _targets(scenario, options, target)
    if options.fast:
        kinds = {t.name for t in targets.values()}
        if len(kinds) > 1 or (kinds == {"sim"} and len(targets) > 1):
            raise UserError(
                "--fast runs on one virtual clock: several mocks or a single sim (this run: "
                f"{len(targets)} devices on {_kinds(targets)}); run it without --fast"
            )
        first = next(iter(targets.values()))
        if isinstance(first, VirtualTime):
            clock = first.virtual_clock()  # else run_scenario refuses --fast
    try:
        return trio.run(run_scenario, scenario, options, extensions, targets, clock=clock)
    except BaseExceptionGroup as group:
        if (error := found_in(group, UserError)) is not None:
            raise error from None
        if group.subgroup(KeyboardInterrupt) is not None:  # Ctrl-C while the target started
            raise KeyboardInterrupt from None
        raise
