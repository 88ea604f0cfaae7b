"""The mock device: protocol v1's DeviceLink plus an electrical model of an INA219 on the
scenario's supply rail, running on any byte stream in trio time (so under a MockClock an hour
of scenario runs in seconds).

It reboots like the firmware: a `reset()` or, with a shared rail, the supply falling below the
brownout level ends the boot (window and pending sample gone); power coming back starts the
next boot with the boot counter one higher.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import trio

from harness.link import CommandExecuted, DeviceEvent, DeviceLink, SampleClosed, Settings
from harness.link.fields import FIRMWARE_VERSION
from harness.scenario.model import DeviceSpec
from harness.scenario.profile import Profile
from harness.targets.base import PowerChange
from harness.targets.mock.electrical import Electrical
from harness.transports.wakeable import Wakeable

MockEvent = DeviceEvent | PowerChange

EDGE_SLACK = 1e-9
"""A wake-up computed for a brownout edge may land a rounding error before it."""


class MockDevice:
    def __init__(
        self,
        *,
        profile: Profile,
        spec: DeviceSpec = DeviceSpec(),
        seed: int | str = 0,
        boot: int = 1,
        on_event: Callable[[MockEvent], None] | None = None,
        uart_rate: float | None = None,
        fw: str = FIRMWARE_VERSION,
    ) -> None:
        self.fw = fw
        """The firmware version its hello gives."""
        self.electrical = Electrical(profile, spec, seed)
        self.next_boot = boot
        self.link: DeviceLink | None = None
        self.settings = Settings()
        self.produced: Counter[int] = Counter()
        """Samples closed, by boot: what the host should receive."""
        self.executed: Counter[tuple[int, int]] = Counter()
        """Commands executed, by (boot, seq): never more than 1 each."""
        self.on_event: Callable[[MockEvent], None] = on_event or (lambda event: None)
        """Told of every device event and power change as it happens."""
        self._origin = 0.0
        self._last = 0.0
        self._reset_requested = False
        self._waker = Wakeable()
        self.uart_rate = uart_rate
        """Bytes/s the UART sends (a baud rate / 10): a line starts only once the one before
        it has gone, as the firmware writes. None: all that is due goes at once."""
        self._uart_free = 0.0

    # --- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Reset the MCU now (a reset button, or the harness pulsing DTR)."""
        self._reset_requested = True
        self._waker.wake()

    @property
    def boot(self) -> int | None:
        return self.link.boot if self.link is not None else None

    # --- running ---------------------------------------------------------------------------

    async def run(self, stream: trio.abc.Stream, origin: float | None = None) -> None:
        """Talk protocol v1 on `stream` until it ends. Scenario time 0 is `origin` (trio time;
        default now)."""
        self._origin = trio.current_time() if origin is None else origin
        self._last = trio.current_time() - self._origin
        if self.electrical.powered(self._last):
            self._power_up(self._last, "power on")
        while True:
            data = await self._waker.receive(stream, self._next_wake())
            if data == b"":
                return
            now = trio.current_time()
            self._advance(now - self._origin)
            if self.link is not None:
                self._emit(self.link.feed(data, now) if data else self.link.poll(now))
                await self._transmit(stream, now)

    async def _transmit(self, stream: trio.abc.Stream, now: float) -> None:
        assert self.link is not None
        if self.uart_rate is None:
            out = self.link.data_to_send()
        elif now >= self._uart_free and (out := self.link.next_line()):
            self._uart_free = now + len(out) / self.uart_rate
        else:
            return
        if out:
            await stream.send_all(out)

    def _next_wake(self) -> float | None:
        t = trio.current_time() - self._origin
        times: list[float] = []
        if self.link is not None:
            if (d := self.link.next_deadline()) is not None:
                times.append(d)
            if self.uart_rate is not None and self.link.has_output:
                times.append(max(self._uart_free, trio.current_time()))
            if self.link.awaiting_reading:
                times.append(self._origin + self.electrical.next_reading(t, self.settings.avg))
        spec = self.electrical.spec
        if spec.shared_rail:
            start = max(t, self._last)  # edges up to _last are handled
            ahead = self.electrical.profile.crossings(spec.brownout, start, start + 3600.0)
            if ahead:
                times.append(self._origin + ahead[0])
        return min(times) if times else None

    def _advance(self, t: float) -> None:
        """Bring the model to scenario time t: readings, brownouts and resets on the way."""
        spec = self.electrical.spec
        edges = (
            self.electrical.profile.crossings(spec.brownout, self._last, t + EDGE_SLACK)
            if spec.shared_rail
            else []
        )
        for edge in edges:  # each is a transition: the rail crosses the brownout level
            self._read_until(edge)
            if self.link is None:
                self._power_up(edge, "brownout over")
            else:
                self._power_down(edge, "brownout")
        self._read_until(t)
        if self._reset_requested:
            self._reset_requested = False
            if self.link is not None:
                self._power_down(t, "reset")
                self._power_up(t, "reset")

    def _read_until(self, t: float) -> None:
        if self.link is not None and t > self._last:
            readings = self.electrical.readings(self._last, t, self.settings.avg)
            if readings is not None:
                self._emit(self.link.add_readings(self._origin + t, readings))
        self._last = max(self._last, t)

    def _power_up(self, t: float, cause: str) -> None:
        self.settings = Settings()
        self.link = DeviceLink(
            now=self._origin + t, boot=self.next_boot, fw=self.fw, settings=self.settings
        )
        self.on_event(PowerChange(self._origin + t, self.next_boot, cause))
        self.next_boot = (self.next_boot + 1) & 0xFFFF

    def _power_down(self, t: float, cause: str) -> None:
        self.link = None
        self.on_event(PowerChange(self._origin + t, None, cause))

    def _emit(self, events: list[DeviceEvent]) -> None:
        assert self.link is not None
        self.settings = self.link.settings
        for event in events:
            if isinstance(event, SampleClosed):
                self.produced[event.sample.boot] += 1
            elif isinstance(event, CommandExecuted):
                self.executed[(self.link.boot, event.command.seq)] += 1
            self.on_event(event)
