"""The board target: a real Arduino running the firmware, on a serial port.

Opening the port resets an Uno (DTR), and its bootloader hands over to the firmware about 1.6 s
later; the firmware then says hello. So the run waits for a first hello (`hello_timeout`, from
the port's opening) and ends with one line saying what to check if none comes. A reset pulses
DTR (or closes and reopens a port without modem lines) and returns once the new boot's hello
has come. A board that re-enumerates after an unplug is found again by its USB identity.
"""

from __future__ import annotations

import trio

from harness.errors import TargetError
from harness.targets.base import OnTargetEvent, PortChange
from harness.targets.hellowatch import HelloWatch
from harness.transports.serialport import BAUD, SerialStream, find_arduino
from harness.transports.usbports import usb_id_of

HELLO_TIMEOUT = 5.0
"""Seconds a board has for its first hello after the port opens, and for its new boot's hello
after a reset: an Uno's bootloader takes about 1.6 s after the DTR reset (older bootloaders up
to about 3 s), the firmware's start a few ms more; the rest is margin, short enough that a
wrong port is reported while the person is still looking."""


class BoardTarget:
    name = "board"
    capabilities = frozenset({"reset"})
    truth = None

    def __init__(
        self, path: str | None, baud: int = BAUD, hello_timeout: float = HELLO_TIMEOUT
    ) -> None:
        self.path = path
        self.baud = baud
        self.hello_timeout = hello_timeout
        self._stream: SerialStream | None = None
        self._watch: HelloWatch | None = None

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        """Open the port (scenario time 0 stays at `origin`, before it: a board fed by a bench
        supply boots only once the supply is on) and watch, in `nursery`, for its first hello."""
        path = self.path = self.path or find_arduino()
        usb_id = await trio.to_thread.run_sync(usb_id_of, path)

        def on_outage(start: float, end: float | None) -> None:
            if end is None:
                on_event(PortChange(start, "unplugged", self.path or path))
                return
            self.path = stream.path  # where it came back: another path if it re-enumerated
            on_event(PortChange(end, "replugged", stream.path))

        stream = self._stream = SerialStream(path, self.baud, on_outage, usb_id)
        watch = self._watch = HelloWatch(stream)
        nursery.start_soon(self._first_hello, watch)
        return watch

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

    async def why_it_ended(self) -> str | None:
        return None
