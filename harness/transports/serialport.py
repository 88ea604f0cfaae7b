"""A real serial port (the board target) through pyserial, read and written by trio.

pyserial opens, locks and configures the port (and lists ports to find an Arduino by its USB
VID/PID); trio waits on the port's file descriptor. An unplugged port is reopened with backoff,
and each outage is reported.
"""

from __future__ import annotations

import contextlib
import errno
import os
import termios
from collections.abc import Callable

import serial
import serial.tools.list_ports
import trio

from harness.errors import TargetError

BAUD = 115200
ARDUINO_VIDS = {
    0x2341: "Arduino",
    0x2A03: "Arduino.org",
    0x1A86: "CH340 (Arduino clone)",
    0x0403: "FTDI",
    0x10C4: "CP210x",
}
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0


def find_arduino() -> str:
    """The port of the one Arduino plugged in, by USB vendor id."""
    found = [p for p in serial.tools.list_ports.comports() if p.vid in ARDUINO_VIDS]
    if not found:
        known = ", ".join(f"{vid:04X} ({name})" for vid, name in ARDUINO_VIDS.items())
        raise TargetError(
            f"no Arduino found on USB (vendor ids {known}); plug it in or give --serial PATH"
        )
    if len(found) > 1:
        ports = ", ".join(p.device for p in found)
        raise TargetError(f"several Arduinos found ({ports}); choose one with --serial PATH")
    return found[0].device


def _reads_wait_for_a_byte(port: serial.Serial) -> serial.Serial:
    """pyserial leaves VMIN = VTIME = 0, with which a tty read returns 0 bytes when nothing has
    come (not EAGAIN); with VMIN = 1 a read of 0 bytes means the port hung up."""
    attrs = termios.tcgetattr(port.fileno())
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(port.fileno(), termios.TCSANOW, attrs)
    return port


def open_port(path: str, baud: int = BAUD) -> serial.Serial:
    """Open and lock the port, or raise TargetError with one line saying what to do."""
    try:
        return _reads_wait_for_a_byte(serial.Serial(path, baud, timeout=0, exclusive=True))
    except serial.SerialException as exc:
        code = exc.errno
        text = str(exc)
        if code == errno.ENOENT or "No such file" in text:
            raise TargetError(
                f"{path}: no such serial port (is the board plugged in? `harness run --target board` finds it by itself)"
            ) from None
        if code == errno.EACCES or "Permission denied" in text:
            raise TargetError(
                f"{path}: permission denied (add yourself to the dialout group, then log in again)"
            ) from None
        if code in (errno.EBUSY, errno.EAGAIN) or "busy" in text.lower() or "lock" in text.lower():
            raise TargetError(
                f"{path}: port busy: another program has it open (close the serial monitor and retry)"
            ) from None
        raise TargetError(f"{path}: cannot open the serial port: {text}") from None


class SerialStream(trio.abc.Stream):
    """A serial port as a trio stream that survives unplugging: reads and writes during an
    outage wait for the port to come back (writes made meanwhile are dropped, like bytes on an
    unplugged wire) and `on_outage(start, end)` reports each outage in trio time."""

    def __init__(
        self,
        path: str,
        baud: int = BAUD,
        on_outage: Callable[[float, float | None], None] | None = None,
    ) -> None:
        self.path = path
        self.baud = baud
        self._on_outage = on_outage or (lambda start, end: None)
        self._port = open_port(path, baud)
        self._fd = trio.lowlevel.FdStream(os.dup(self._port.fileno()))
        self._down: trio.Event | None = None

    def pulse_dtr(self) -> None:
        """Reset the board the way the Arduino IDE does: drop DTR for a moment (not while the
        board is unplugged: there is nothing to reset)."""
        if self._down is not None:
            return
        self._port.dtr = False
        self._port.dtr = True

    async def _reconnect(self) -> None:
        start = trio.current_time()
        self._on_outage(start, None)
        self._down = trio.Event()
        await self._fd.aclose()
        self._port.close()
        delay = BACKOFF_FIRST
        while True:
            await trio.sleep(delay)
            try:
                self._port = open_port(self.path, self.baud)
                break
            except TargetError:
                delay = min(delay * 2, BACKOFF_MAX)
        self._fd = trio.lowlevel.FdStream(os.dup(self._port.fileno()))
        self._on_outage(start, trio.current_time())
        self._down.set()
        self._down = None

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while True:
            if self._down is not None:
                await self._down.wait()
                continue
            try:
                data = await self._fd.receive_some(max_bytes)
            except (OSError, trio.BrokenResourceError):
                data = b""
            if data:
                return data
            await self._reconnect()  # a tty that reads 0 bytes or fails has been hung up

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._down is not None:
            await trio.lowlevel.checkpoint()
            return
        with contextlib.suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            await self._fd.send_all(data)  # on failure receive_some notices and reconnects

    async def wait_send_all_might_not_block(self) -> None:
        await self._fd.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._fd.aclose()
        self._port.close()
