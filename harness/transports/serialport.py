"""A real serial port (the board target) through pyserial, read and written by trio.

pyserial opens, locks and configures the port (and lists ports to find an Arduino by its USB
VID/PID); trio waits on the port's file descriptor. An unplugged port is reopened with backoff,
and each outage is reported.
"""

from __future__ import annotations

import errno
import os
import termios
from collections.abc import Callable

import serial
import serial.tools.list_ports
import trio

from harness.errors import TargetError
from harness.transports.guard import OneTask, check_max_bytes

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


class _Connection(trio.abc.Stream):
    """One opening of the port. A hang-up (the board unplugged) ends it: reads return b"" (with
    VMIN = 1 a tty read of 0 bytes is a hang-up; a read may also fail with EIO) and writes
    raise BrokenResourceError."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self._fd = trio.lowlevel.FdStream(os.dup(port.fileno()))

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            return await self._fd.receive_some(max_bytes)
        except trio.BrokenResourceError:
            return b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._fd.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._fd.wait_send_all_might_not_block()

    def close(self) -> None:
        """Close now; a task blocked on the port raises ClosedResourceError."""
        self._fd.close()
        self.port.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


class SerialStream(trio.abc.Stream):
    """A serial port as a trio stream that survives unplugging: reads and writes during an
    outage wait for the port to come back (writes made meanwhile are dropped, like bytes on an
    unplugged wire) and `on_outage(start, end)` reports each outage in trio time.

    So a hang-up never ends this stream, and its writes never fail: only aclose ends it. Each
    opening of the port (_Connection) is the stream that ends at a hang-up."""

    def __init__(
        self,
        path: str,
        baud: int = BAUD,
        on_outage: Callable[[float, float | None], None] | None = None,
    ) -> None:
        self.path = path
        self.baud = baud
        self._on_outage = on_outage or (lambda start, end: None)
        self._conn: _Connection | None = _Connection(open_port(path, baud))
        self._outage_start = 0.0
        self._backoff = BACKOFF_FIRST
        self._retry_at = 0.0
        self._closed = trio.Event()
        self._sending = OneTask("sending on this stream")
        self._receiving = OneTask("receiving on this stream")

    def pulse_dtr(self) -> None:
        """Reset the board the way the Arduino IDE does: drop DTR for a moment (not while the
        board is unplugged: there is nothing to reset)."""
        if self._conn is None:
            return
        self._conn.port.dtr = False
        self._conn.port.dtr = True

    def _hang_up(self, conn: _Connection) -> None:
        conn.close()
        self._conn = None
        self._outage_start = trio.current_time()
        self._backoff = BACKOFF_FIRST
        self._retry_at = self._outage_start + self._backoff
        self._on_outage(self._outage_start, None)

    async def _reopen(self) -> _Connection:
        """Try the port at each retry time until it opens. The next retry time is kept on the
        stream, so a receive cancelled during the outage (at each deadline of its caller) leaves
        the schedule as it was and the next receive carries on with it."""
        while True:
            with trio.move_on_at(self._retry_at):
                await self._closed.wait()
            if self._closed.is_set():
                raise trio.ClosedResourceError("the stream was closed")
            try:
                port = open_port(self.path, self.baud)
            except TargetError:
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
                self._retry_at = trio.current_time() + self._backoff
                continue
            self._conn = _Connection(port)
            self._on_outage(self._outage_start, trio.current_time())
            return self._conn

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        check_max_bytes(max_bytes)
        with self._receiving:
            while True:
                if self._closed.is_set():
                    raise trio.ClosedResourceError("the stream was closed")
                conn = self._conn or await self._reopen()
                data = await conn.receive_some(max_bytes)
                if data:
                    return data
                self._hang_up(conn)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._sending:
            if self._closed.is_set():
                raise trio.ClosedResourceError("the stream was closed")
            if self._conn is None:
                await trio.lowlevel.checkpoint()
                return
            try:
                await self._conn.send_all(data)
            except trio.BrokenResourceError:
                pass  # the port hung up: receive_some sees it too and reopens the port
            except trio.ClosedResourceError:
                if self._closed.is_set():
                    raise
                # receive_some found the hang-up and let go of the port during this send

    async def wait_send_all_might_not_block(self) -> None:
        with self._sending:
            if self._closed.is_set():
                raise trio.ClosedResourceError("the stream was closed")
            if self._conn is None:
                await trio.lowlevel.checkpoint()
                return
            try:
                await self._conn.wait_send_all_might_not_block()
            except trio.ClosedResourceError:
                if self._closed.is_set():
                    raise

    async def aclose(self) -> None:
        """Close now (a task blocked on the port, or waiting out an outage, raises
        ClosedResourceError), then checkpoint: a cancelled aclose has still closed."""
        self._closed.set()
        if self._conn is not None:
            self._conn.close()
        await trio.lowlevel.checkpoint()
