"""A discrete-event simulation of HostLink and DeviceLink joined by two FaultyPipes, no trio:
hours of link time run in a fraction of a second, and every run replays from its seed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness.faults import FaultConfig, FaultyPipe
from harness.link import (
    CommandDone,
    CommandExecuted,
    CommandFailed,
    DeviceEvent,
    DeviceLink,
    DeviceTiming,
    HostEvent,
    HostLink,
    HostTiming,
    Readings,
    SampleClosed,
    SampleReceived,
    Settings,
)


class DeviceSide(Protocol):
    """What LinkSim drives: a DeviceLink, or the C++ core behind tests/cpp_device.CppDevice."""

    @property
    def settings(self) -> Settings: ...

    def add_readings(self, now: float, readings: Readings) -> list[DeviceEvent]: ...
    def feed(self, data: bytes, now: float) -> list[DeviceEvent]: ...
    def poll(self, now: float) -> list[DeviceEvent]: ...
    def data_to_send(self) -> bytes: ...
    def next_deadline(self) -> float | None: ...


DeviceFactory = Callable[..., DeviceSide]
"""Called like DeviceLink: (now=, boot=, settings=, timing=, first_seq=)."""


@dataclass
class Trace:
    delivered: list[tuple[float, SampleReceived]] = field(default_factory=list)
    closed: list[SampleClosed] = field(default_factory=list)
    readings: list[tuple[int, int]] = field(default_factory=list)
    """(index of the sample it falls in, n) of every batch of readings added."""
    host_events: list[HostEvent] = field(default_factory=list)
    device_events: list[DeviceEvent] = field(default_factory=list)
    sent: dict[int, tuple[str, dict]] = field(default_factory=dict)
    done: dict[int, CommandDone] = field(default_factory=dict)
    failed: dict[int, CommandFailed] = field(default_factory=dict)
    executed: list[CommandExecuted] = field(default_factory=list)


class LinkSim:
    def __init__(
        self,
        *,
        seed: int = 0,
        d2h: FaultConfig = FaultConfig(),
        h2d: FaultConfig = FaultConfig(),
        interval_ms: int = 100,
        reading_period: float = 0.01,
        readings_per_batch: int = 5,
        boot: int = 1,
        first_seq: int = 0,
        host_timing: HostTiming = HostTiming(),
        device_timing: DeviceTiming = DeviceTiming(),
        device_factory: DeviceFactory = DeviceLink,
    ) -> None:
        self.t = 0.0
        self.host = HostLink(now=0.0, timing=host_timing)
        self._new_device = device_factory
        self.device = device_factory(
            now=0.0,
            boot=boot,
            settings=Settings(interval_ms=interval_ms),
            timing=device_timing,
            first_seq=first_seq,
        )
        self.down = FaultyPipe(d2h, seed, "d2h")
        self.up = FaultyPipe(h2d, seed, "h2d")
        self.reading_period = reading_period
        self.batch = readings_per_batch
        self.next_reading = reading_period
        self.reading_on = True
        self.trace = Trace()
        self._actions: list[tuple[float, int, Callable[[], None]]] = []

    # --- scripting -------------------------------------------------------------------------

    def at(self, t: float, action: Callable[[], None]) -> None:
        self._actions.append((t, len(self._actions), action))
        self._actions.sort(key=lambda x: (x[0], x[1]))

    def command(self, name: str, args: dict | None = None, *, check: bool = True) -> int:
        handle = self.host.send_command(name, args, now=self.t, check=check)
        self.trace.sent[handle] = (name, dict(args or {}))
        self._exchange()
        return handle

    def set_faults(self, d2h: FaultConfig, h2d: FaultConfig) -> None:
        self.down.set_config(d2h)
        self.up.set_config(h2d)

    def reboot(self, boot: int) -> None:
        """The device resets: its window and pending sample are gone, seq starts at 0."""
        self.device = self._new_device(
            now=self.t, boot=boot, settings=Settings(self.device.settings.interval_ms)
        )
        self.next_reading = self.t + self.reading_period

    # --- running ---------------------------------------------------------------------------

    def run_until(self, t_end: float) -> Trace:
        same_time_steps = 0
        while True:
            candidates = [
                t_end,
                self.next_reading if self.reading_on else None,
                self.host.next_deadline(),
                self.device.next_deadline(),
                self.down.next_deadline(),
                self.up.next_deadline(),
                self._actions[0][0] if self._actions else None,
            ]
            t = max(self.t, min(c for c in candidates if c is not None))
            same_time_steps = same_time_steps + 1 if t == self.t else 0
            assert same_time_steps < 1000, f"simulation stuck at t={t}"
            self.t = t
            self._step()
            if t >= t_end:
                return self.trace

    def _step(self) -> None:
        t = self.t
        if self.reading_on and t >= self.next_reading:
            self.trace.readings.append((len(self.trace.closed), self.batch))
            r = Readings(self.batch, 5.0, 0.25, 1.25, 4.9, 5.1, 0.3, 1.4)
            self._device(self.device.add_readings(t, r))
            self.next_reading += self.reading_period
        while self._actions and self._actions[0][0] <= t:
            self._actions.pop(0)[2]()
        self._exchange()

    def _exchange(self) -> None:
        t = self.t
        self._device(self.device.poll(t))
        self.down.send(self.device.data_to_send(), t)
        self._host(self.host.feed(self.down.receive(t), t))
        self.up.send(self.host.data_to_send(), t)
        self._device(self.device.feed(self.up.receive(t), t))
        self.down.send(self.device.data_to_send(), t)
        self.up.send(self.host.data_to_send(), t)

    def _host(self, events: list[HostEvent]) -> None:
        tr = self.trace
        for ev in events:
            tr.host_events.append(ev)
            if isinstance(ev, SampleReceived):
                tr.delivered.append((self.t, ev))
            elif isinstance(ev, CommandDone):
                tr.done[ev.handle] = ev
            elif isinstance(ev, CommandFailed):
                tr.failed[ev.handle] = ev

    def _device(self, events: list[DeviceEvent]) -> None:
        tr = self.trace
        for ev in events:
            tr.device_events.append(ev)
            if isinstance(ev, SampleClosed):
                tr.closed.append(ev)
            elif isinstance(ev, CommandExecuted):
                tr.executed.append(ev)
