"""Everything a run observes, turned into link totals, expectation verdicts and bus events."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from harness.faults import FaultEvent, LinkFaults
from harness.link import (
    CommandDone,
    CommandFailed,
    CorruptFrame,
    DeviceHello,
    DeviceReset,
    DuplicateDropped,
    GapSeen,
    HostEvent,
    HostLink,
    LogLine,
    RetransmissionSeen,
    Sample,
    SampleReceived,
    seqnum,
)
from harness.link import fields as f
from harness.runner.bus import Bus, RunEvent, SampleEvent
from harness.runner.record import HelloInfo, LinkTotals, ReadbackInfo, SupplySettingInfo
from harness.runner.supply_log import SupplyLog
from harness.runner.watch import (
    CHECK_LABEL,
    DeviceWatch,
    Notice,
    OtherDevice,
    Reporting,
    Silent,
)
from harness.scenario.anchors import EVENT_KINDS
from harness.scenario.expect import FAIL, MARGINAL, PASS, Evaluator, Outcome, RunFacts, evaluator
from harness.scenario.model import Outage, Reset, Scenario, SetLink, Step, WaitLog
from harness.targets import (
    PortChange,
    PowerChange,
    SensorOverMax,
    SupplyEvent,
    SupplyOpened,
    SupplyRead,
    SupplySaid,
    SupplySet,
    TargetEvent,
    Truth,
)

LOG_KEPT = 1000
"""Device log lines the record keeps (the store keeps every one as an event)."""
RECENT_LOG = 32
"""The latest log lines a step that waits looks back on."""

INJECTED_KINDS = (
    "drop",
    "burst_drop",
    "corrupt",
    "duplicate",
    "reorder",
    "garbage",
    "outage_drop",
)


class DeviceClock:
    """Maps a sample's device time to scenario seconds. Per boot, the offset is the smallest
    (arrival - ts) seen: the sample that came fastest bounds the link's delay best."""

    def __init__(self) -> None:
        self.offsets: dict[int, float] = {}

    def span(self, s: Sample, arrived: float) -> tuple[float, float]:
        ts = s.ts
        offset = arrived - ts / 1000
        known = self.offsets.get(s.boot)
        if known is not None and known <= offset:
            offset = known
        else:
            self.offsets[s.boot] = offset
        return offset + (ts - s.dt) / 1000, offset + ts / 1000


@dataclass(slots=True)
class _Command:
    name: str
    args: dict[str, Any]
    step: int | None
    issued: float
    outcome: str = "pending"
    latency: float | None = None
    reason: str | None = None
    reapplied: bool = False


@dataclass(slots=True)
class _Burst:
    """A fault burst started by a step; recovered when the link has caught up after it."""

    name: str
    end: float
    recovered_after: float | None = None


@dataclass(slots=True)
class ResetRecord:
    """What one reset took: samples the host knew of, and device time with no sample."""

    at: float
    old_boot: int
    new_boot: int
    samples_lost: int
    old_end: float | None
    time_lost: float | None = None


@dataclass(slots=True)
class _BootTally:
    delivered: int = 0
    last_seq: int | None = None
    skipped: int = 0
    duplicated: int = 0


class Observer:
    def __init__(
        self,
        scenario: Scenario,
        origin: float,
        bus: Bus,
        truth: Truth | None = None,
        device: str | None = None,
    ) -> None:
        """Observes `device` (default: the scenario's first), as `scenario` (that device's
        view of it) says."""
        self.device = scenario.devices[0].name if device is None else device
        """The device it observes: on everything it publishes."""
        self.scenario = scenario
        self.origin = origin
        self.bus = bus
        self.truth = truth
        self.clock = DeviceClock()
        self.evaluators: list[Evaluator] = [
            evaluator(e, scenario.duration) for e in scenario.expects
        ]
        self.boots: dict[int, _BootTally] = {}
        self.current_boot: int | None = None
        self.hello: HelloInfo | None = None
        self.resets = 0
        self.reset_losses = 0
        self.reset_log: list[ResetRecord] = []
        self.commands: dict[int, _Command] = {}
        self.injected: Counter[str] = Counter()
        self.injected_by_direction: dict[str, Counter[str]] = {}
        self.last_sample: SampleEvent | None = None
        self.last_status = f.STATUS_OK
        self.bursts = self._bursts(scenario.steps)
        self.steps_done = 0
        self.produced_at_end: dict[int, int] | None = None
        """The mock's samples per boot when the scenario's time ran out: the drain waits for
        these, and only these can be lost (later ones were still in flight when it stopped)."""
        self.watch = DeviceWatch(scenario)
        self.on_watch_change: Callable[[], None] = lambda: None
        """Called when the watch's `due()` may have come earlier: the run's timer waits for it."""
        self._unplugged_at: float | None = None
        self.supply = SupplyLog()
        """The bench supply the run drives, if any (`supply.opened`)."""
        self._unplugged_port: str | None = None
        self.log: list[tuple[float, str]] = []
        """The device's log lines (scenario seconds, text), the first LOG_KEPT of them."""
        self.log_lines = 0
        self._log_waiters: list[tuple[WaitLog, trio.Event]] = []
        self._recent_log: deque[tuple[float, str]] = deque(maxlen=RECENT_LOG)

    @staticmethod
    def _bursts(steps: tuple[Step, ...]) -> list[_Burst]:
        bursts: list[_Burst] = []
        for i, step in enumerate(steps):
            a = step.action
            if isinstance(a, Outage) and not a.stop:
                if a.duration is not None:
                    end = step.at + a.duration
                else:
                    end = next(
                        (
                            s.at
                            for s in steps[i + 1 :]
                            if isinstance(s.action, Outage) and s.action.stop
                        ),
                        float("inf"),
                    )
                bursts.append(_Burst(step.name, end))
            elif isinstance(a, SetLink):
                end = next(
                    (s.at for s in steps[i + 1 :] if isinstance(s.action, SetLink)), float("inf")
                )
                bursts.append(_Burst(step.name, end))
        return bursts

    def now(self, at: float) -> float:
        """Scenario seconds for a trio time."""
        return at - self.origin

    def emit(self, kind: str, at: float, **data: Any) -> None:
        self.bus.publish(RunEvent(kind, at, data, self.device))
        if kind in EVENT_KINDS:
            for ev in self.evaluators:
                was = ev.resolved
                ev.on_event(kind, at, data)
                if ev.resolved and not was:
                    self._announce(ev, at)

    # --- inputs ----------------------------------------------------------------------------

    def issued(
        self,
        handle: int,
        name: str,
        args: dict[str, Any],
        step: int | None,
        at: float,
        *,
        reapplied: bool = False,
    ) -> None:
        """A command was queued: by a step, or by the run re-applying a setting after a boot."""
        t = self.now(at)
        self.commands[handle] = _Command(name, dict(args), step, t, reapplied=reapplied)
        more = {"reapplied": True} if reapplied else {}
        self.emit(
            "command", t, handle=handle, name=name, args=dict(args), state="sent", step=step, **more
        )
        self.watch.command_sent(handle, name, args)
        self.on_watch_change()

    def on_step(self, step: Step, at: float) -> None:
        t = self.now(at)
        self.steps_done += 1
        self.emit("step", t, number=step.number, name=step.name, index=self.steps_done)
        match step.action:
            case Outage(stop=True):
                self.watch.outage_stopped(t)
            case Outage(duration=duration):
                self.watch.outage(t, duration)
            case SetLink(faults=faults):
                self.watch.faults(t, faults)
            case Reset():
                self.watch.reset(t)
        self.on_watch_change()

    def wait_for_log(self, wait: WaitLog, since: float) -> trio.Event:
        """Set when a log line that arrived at scenario second `since` or later matches the
        step's pattern: one that came already (a line its step's time shares with the step
        before, e.g. a reset's boot line) counts."""
        arrived = trio.Event()
        if any(t >= since and wait.matches(text) for t, text in self._recent_log):
            arrived.set()
        else:
            self._log_waiters.append((wait, arrived))
        return arrived

    def device_opened(self, at: float) -> None:
        """The target's stream is open: from now the device is expected to report."""
        self.watch.started(self.now(at))
        self.on_watch_change()

    def check_device(self, at: float) -> None:
        """Call at the watch's `due()`: declares what has become true."""
        self._notices(self.watch.check(self.now(at)))

    def _notices(self, notices: list[Notice]) -> None:
        for n in notices:
            match n:
                case Silent():
                    self.emit(
                        "silent",
                        n.at,
                        last_sample=n.last_sample,
                        allowance=round(n.allowance, 3),
                    )
                case Reporting():
                    self.emit(
                        "reporting", n.at, silent_since=n.silent_since, last_sample=n.last_sample
                    )
                    self.on_watch_change()
                case OtherDevice():
                    self.emit("other_device", n.at, detail=n.detail)

    def on_fault(self, e: FaultEvent) -> None:
        t = self.now(e.at)
        if e.kind in INJECTED_KINDS:
            self.injected[e.kind] += 1
            self.injected_by_direction.setdefault(e.direction, Counter())[e.kind] += 1
        self.emit("fault", t, direction=e.direction, fault=e.kind, what=e.what, seq=e.seq)

    def on_target(self, e: TargetEvent) -> None:
        match e:
            case SupplyOpened() | SupplySet() | SupplyRead() | SupplySaid():
                self._on_supply(e)
            case PowerChange():
                self.emit("power", self.now(e.at), boot=e.boot, cause=e.cause)
            case SensorOverMax():
                state = "over_max" if e.over else "within_max"
                self.emit("sensor", self.now(e.at), state=state, volts=e.volts)
            case PortChange():
                t = self.now(e.at)
                more: dict[str, Any] = {}
                if e.state == "unplugged":
                    self._unplugged_at = t
                    self._unplugged_port = e.port
                else:
                    if self._unplugged_at is not None:
                        more["down"] = round(t - self._unplugged_at, 3)
                    if self._unplugged_port not in (None, e.port):
                        more["was"] = self._unplugged_port  # it re-enumerated elsewhere
                    self._unplugged_at = None
                    self.watch.replugged(t)
                    self.on_watch_change()
                self.emit(
                    "fault",
                    t,
                    direction="both",
                    fault=e.state,
                    what="port",
                    seq=None,
                    port=e.port,
                    **more,
                )

    def _on_supply(self, e: SupplyEvent) -> None:
        """The bench supply: its identity and limits, each acknowledged setting, each
        readback (also to the evaluators), and a manual supply's lines for the person."""
        t = self.now(e.at)
        match e:
            case SupplyOpened():
                self.supply.opened_as(
                    e.name, e.identity, e.describe, dict(e.limits), e.limits_from, e.by_hand
                )
                self.emit(
                    "supply",
                    t,
                    what="opened",
                    name=e.name,
                    identity=e.identity,
                    limits=dict(e.limits),
                    limits_from=e.limits_from,
                    limits_text=e.limits_text,
                    by_hand=e.by_hand,
                )
            case SupplySet():
                info = SupplySettingInfo(
                    e.what,
                    e.value,
                    round(self.now(e.due), 4),
                    round(t, 4),
                    round(e.at - e.sent, 4),
                    e.point,
                )
                self.supply.setting(info, e.skipped)
                self.emit(
                    "supply",
                    t,
                    what=e.what,
                    value=e.value,
                    due=info.due,
                    latency=info.latency,
                    point=e.point,
                    **({"by_hand": True} if self.supply.by_hand else {}),
                )
            case SupplyRead():
                self.supply.readback(ReadbackInfo(round(t, 4), e.volts, e.amps))
                self.emit("readback", t, volts=e.volts, amps=e.amps)
                for ev in self.evaluators:
                    was = ev.resolved
                    ev.on_readback(t, e.volts, e.amps)
                    if ev.resolved and not was:
                        self._announce(ev, t)
            case SupplySaid():
                self.emit("announcement", t, text=e.text)

    def on_host(self, e: HostEvent) -> None:
        match e:
            case SampleReceived():
                self._on_sample(e.sample, self.now(e.at))
            case DeviceHello():
                h = e.hello
                t = self.now(e.at)
                self.hello = HelloInfo(h.fw, h.boot, h.interval, h.win)
                if self.current_boot is None:
                    self.current_boot = h.boot
                self.emit("hello", t, fw=h.fw, boot=h.boot, interval=h.interval, win=h.win)
                self._notices(self.watch.hello(t, h.fw, h.boot, h.interval))
                self.on_watch_change()
            case DeviceReset():
                self.resets += 1
                self.reset_losses += e.lost
                old_end = self.last_sample.end if self.last_sample else None
                self.reset_log.append(
                    ResetRecord(self.now(e.at), e.old_boot, e.new_boot, e.lost, old_end)
                )
                self.current_boot = e.new_boot
                self.clock.offsets.pop(e.new_boot, None)  # a new boot's clock starts at 0...
                if (tally := self.boots.get(e.new_boot)) is not None:
                    tally.last_seq = None  # ...and its seqs anew, if it kept the old number
                self.emit(
                    "reset", self.now(e.at), old_boot=e.old_boot, new_boot=e.new_boot, lost=e.lost
                )
            case CommandDone():
                self._finish_command(e.handle, self.now(e.at), None)
            case CommandFailed():
                self._finish_command(e.handle, self.now(e.at), e.reason)
            case CorruptFrame():
                self.emit("corrupt", self.now(e.at), error=e.kind)
            case GapSeen():
                self.emit("gap", self.now(e.at), boot=e.boot, seqs=list(e.seqs))
            case RetransmissionSeen():
                self.emit("retransmission", self.now(e.at), boot=e.boot, seq=e.seq)
            case DuplicateDropped():
                self.emit("duplicate", self.now(e.at), boot=e.boot, seq=e.seq)
            case LogLine():
                t = self.now(e.at)
                self.log_lines += 1
                if len(self.log) < LOG_KEPT:
                    self.log.append((t, e.text))
                self._recent_log.append((t, e.text))
                for wait, arrived in self._log_waiters:
                    if wait.matches(e.text):
                        arrived.set()
                self._log_waiters = [w for w in self._log_waiters if not w[1].is_set()]
                self.emit("log", t, text=e.text)

    def _finish_command(self, handle: int, t: float, reason: str | None) -> None:
        c = self.commands.get(handle)
        if c is None:
            return
        c.outcome = "failed" if reason else "done"
        c.reason = reason
        c.latency = None if reason else t - c.issued
        if reason:
            self.watch.command_failed(handle)
        else:
            self.watch.command_done(handle)
        self.on_watch_change()
        for ev in self.evaluators:
            ev.on_command(handle, c.name, c.step, c.latency)
        self.emit(
            "command",
            t,
            handle=handle,
            name=c.name,
            state=c.outcome,
            reason=reason,
            latency=c.latency,
            step=c.step,
        )

    def _on_sample(self, s: Sample, arrived: float) -> None:
        tally = self.boots.setdefault(s.boot, _BootTally())
        first = tally.last_seq is None  # of a boot, or of a restart that kept the number
        if not first:
            step = seqnum.diff(s.seq, tally.last_seq)
            if step <= 0:
                tally.duplicated += 1
            else:
                tally.skipped += step - 1
        tally.last_seq = s.seq
        tally.delivered += 1
        self.current_boot = s.boot if self.current_boot is None else self.current_boot
        start, end = self.clock.span(s, arrived)
        if first:
            for r in self.reset_log:
                if r.new_boot == s.boot and r.time_lost is None and r.old_end is not None:
                    r.time_lost = max(0.0, start - r.old_end)
        event = SampleEvent(s, start, end, arrived, self.device)
        self.last_sample = event
        if notices := self.watch.sample(arrived, s.boot):
            self._notices(notices)
        if s.status != self.last_status:
            if s.status != f.STATUS_OK:
                self.emit(
                    "alert", start, status=s.status, boot=s.boot, seq=s.seq, v=s.vmin, a=s.amax
                )
            self.last_status = s.status
        self.bus.publish(event)
        for ev in self.evaluators:
            was = ev.resolved
            ev.on_sample(s, start, end)
            if ev.resolved and not was:
                self._announce(ev, arrived)

    def check_recovery(self, link: HostLink, t: float) -> None:
        """Call as the run goes: a burst is over when the link is caught up after its end."""
        for b in self.bursts:
            if b.recovered_after is not None or t < b.end:
                continue
            caught_up = self.last_sample is not None and self.last_sample.end >= b.end
            if caught_up and not link.gap_open and link.synced:
                b.recovered_after = t - b.end

    def _announce(self, ev: Evaluator, t: float) -> None:
        o = ev.outcome
        self.emit(
            "expectation",
            t,
            number=ev.expect.number,
            label=ev.label,
            state=o.state,
            measured=o.measured,
            detail=o.detail,
        )

    # --- end -------------------------------------------------------------------------------

    def totals(self, link: HostLink) -> LinkTotals:
        s = link.stats
        t = LinkTotals()
        t.delivered = sum(b.delivered for b in self.boots.values())
        t.duplicated = sum(b.duplicated for b in self.boots.values())
        live = self.current_boot
        if self.truth is not None:
            for boot, produced in self.produced().items():
                missing = produced - self.boots.get(boot, _BootTally()).delivered
                if boot == self.truth.boot:
                    t.lost += max(missing, 0)
                else:
                    t.lost_to_resets += max(missing, 0)
            t.commands_executed_twice = sum(n - 1 for n in self.truth.executed.values() if n > 1)
        else:
            for boot, tally in self.boots.items():
                if boot == live:
                    t.lost += tally.skipped + link.missing_count
                else:
                    t.lost_to_resets += tally.skipped
            t.lost_to_resets = max(t.lost_to_resets, self.reset_losses)
        t.commands_sent = len(self.commands)
        t.commands_done = sum(c.outcome == "done" for c in self.commands.values())
        t.commands_failed = sum(c.outcome == "failed" for c in self.commands.values())
        t.retransmissions = s.resent
        t.corrupt = s.corrupt
        t.gaps = s.gaps
        t.resets = self.resets
        t.nacks_sent = s.nacks_sent
        t.acks_sent = s.acks_sent
        t.duplicates_dropped = s.duplicates
        return t

    def end_of_time(self, at: float, faults: LinkFaults) -> None:
        """The scenario's time is up: what the mock produced so far is what must arrive. The
        run stops any outage and drains on `faults` (a clean link at the same line rate)."""
        if self.truth is not None:
            self.produced_at_end = dict(self.truth.produced)
        t = self.now(at)
        self.watch.outage_stopped(t)
        self.watch.faults(t, faults)
        self.on_watch_change()

    def produced(self) -> dict[int, int]:
        """The mock's samples per boot that count: those produced before the end, if it came."""
        assert self.truth is not None
        if self.produced_at_end is None:
            return dict(self.truth.produced)
        return {boot: self.produced_at_end.get(boot, 0) for boot in self.truth.produced}

    def finish(self, link: HostLink, end: float, stopped_at: float | None = None) -> LinkTotals:
        """The run is over at scenario second `end` (`stopped_at`: the scenario second Ctrl-C
        or SIGTERM stopped it, before its time): the totals, and every expectation resolved or,
        if the stop came before what it judges, skipped."""
        self.watch.end()
        for handle, c in self.commands.items():
            if c.outcome == "pending":  # never answered before the run ended: not a pass
                self._finish_command(handle, end, "unanswered")
        totals = self.totals(link)
        recovery: dict[str, float | None] = {}
        for b in self.bursts:
            recovery.setdefault(b.name, b.recovered_after)
        ends: dict[str, float] = {}
        for b in self.bursts:
            ends.setdefault(b.name, b.end)
        facts = RunFacts(totals.as_dict(), self.resets, recovery, stopped_at, ends)
        for ev in self.evaluators:
            was = ev.resolved
            why = None if was else ev.unreached(facts)
            if why is not None:
                ev.skip(why)
            else:
                ev.finish(facts)
            if not was:
                self._announce(ev, end)
        return totals

    @property
    def checks(self) -> list[tuple[str, Outcome]]:
        """What every run checks besides the scenario's expectations, with its outcome."""
        return [(CHECK_LABEL, self.watch.outcome())]

    @property
    def verdict(self) -> str:
        """pass, marginal (every expectation passed or was marginal) or fail (any other state:
        failed, skipped or never resolved)."""
        states = [ev.outcome.state for ev in self.evaluators] + [o.state for _, o in self.checks]
        if any(state not in (PASS, MARGINAL) for state in states):
            return FAIL
        return MARGINAL if MARGINAL in states else PASS
