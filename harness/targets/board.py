"""The board target: a real Arduino running the firmware, on a serial port.

Opening the port resets an Uno (DTR), and its bootloader hands over to the firmware about 1.6 s
later; the firmware then says hello. So the run waits for a first hello (`hello_timeout`, from
the port's opening) and ends with one line saying what to check if none comes. A reset pulses
DTR (or closes and reopens a port without modem lines) and returns once the new boot's hello
has come. A board that re-enumerates after an unplug is found again by its USB identity. A
board powered from the monitored rail has no port until the bench supply is on: then the port
may take `hello_timeout` to appear, before its hello's own `hello_timeout`.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from harness.errors import TargetError
from harness.targets.base import OnTargetEvent, PortChange
from harness.targets.hellowatch import HelloWatch
from harness.transports.serialport import BAUD, SerialStream, find_arduino
from harness.transports.usbports import usb_id_of

HELLO_TIMEOUT = 5.0
"""Seconds a board has for its first hello after the port opens, and for its new boot's hello
after a reset: an Uno's bootloader runs for about 1.6 s after the DTR reset before it starts
the firmware, which says hello at once; the rest is margin for other bootloaders, short enough
that a wrong port is reported while the person is still looking."""
PORT_RETRY = 0.1
"""Seconds between attempts to open a port that is not there yet."""


class BoardTarget:
    name = "board"
    capabilities = frozenset({"reset"})
    truth = None

    def __init__(
        self,
        path: str | None,
        baud: int = BAUD,
        hello_timeout: float = HELLO_TIMEOUT,
        port_wait: float = 0.0,
    ) -> None:
        self.path = path
        self.baud = baud
        self.hello_timeout = hello_timeout
        self.port_wait = port_wait
        """Seconds the port may take to appear (0: it must be there when the run starts)."""
        self._stream: SerialStream | None = None
        self._watch: HelloWatch | None = None

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        """Open the port and watch, in `nursery`, for its first hello. Scenario time 0 stays at
        `origin`, before the port opens: a bench supply's profile starts there, and a board fed
        by it boots only once the supply is on."""

        def on_outage(start: float, end: float | None) -> None:
            assert self._stream is not None
            if end is None:
                on_event(PortChange(start, "unplugged", self._stream.path))
                return
            self.path = self._stream.path  # where it came back: elsewhere if it re-enumerated
            on_event(PortChange(end, "replugged", self._stream.path))

        stream = self._stream = await self._open(on_outage)
        watch = self._watch = HelloWatch(stream)
        nursery.start_soon(self._first_hello, watch)
        return watch

    async def _open(self, on_outage: Callable[[float, float | None], None]) -> SerialStream:
        """The port (found by USB id if no path was given), with its USB identity. Within
        `port_wait` seconds a port that cannot be opened yet is tried again: a board powered
        from the rail enumerates on USB only once the supply is on."""
        deadline = trio.current_time() + self.port_wait
        while True:
            try:
                path = self.path or await trio.to_thread.run_sync(find_arduino)
                usb_id = await trio.to_thread.run_sync(usb_id_of, path)
                stream = SerialStream(path, self.baud, on_outage, usb_id)
            except TargetError:
                if trio.current_time() >= deadline:
                    raise
                await trio.sleep(PORT_RETRY)
                continue
            self.path = path
            return stream

    async def _first_hello(self, watch: HelloWatch) -> None:
        with trio.move_on_after(self.hello_timeout):
            await watch.wait_until(lambda: watch.hellos > 0)
            return
        raise TargetError(
            f"no hello from {self.path} within {self.hello_timeout:g} s: check that the powerhil "
            f"firmware is flashed (pio run -t upload), that the port runs at {self.baud} baud, "
            "and the cable (a charge-only USB cable carries no data)"
        )

    async def reset(self) -> None:
        """Pulse DTR and wait for the new boot's hello; no hello within `hello_timeout` is a
        TargetError (the board did not reset, or did not come back)."""
        stream, watch = self._stream, self._watch
        if stream is None or watch is None:
            await trio.lowlevel.checkpoint()
            return
        boots = watch.boots
        await stream.reset()
        with trio.move_on_after(self.hello_timeout):
            await watch.wait_until(lambda: watch.boots > boots)
            return
        raise TargetError(
            f"no new boot from {self.path} within {self.hello_timeout:g} s of the reset: check "
            "that the board resets on DTR (an Uno does; a board with its auto-reset cut or a "
            "native-USB board does not)"
        )

    def set_line_rate(self, rate: float | None) -> None:
        """The board's UART runs at its own baud; a link step's rate paces only the relay."""

    def describe(self) -> str:
        return f"board on {self.path or '(auto)'} at {self.baud} baud"

    def stop(self) -> bool:
        """Nothing of it must end before the drain."""
        return False

    async def why_it_ended(self) -> str | None:
        return None
