"""A real serial port (the board target) through pyserial, read and written by trio.

pyserial opens, locks and configures the port (and lists ports to find an Arduino by its USB
VID/PID); trio waits on the port's file descriptor. An unplugged port is reopened with backoff,
at the path its USB identity has then (a board may re-enumerate elsewhere), and each outage is
reported. A reset pulses DTR, or on a port without modem lines (a pty) closes and reopens it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import termios
from collections.abc import Callable

import serial
import serial.tools.list_ports
import trio

from harness.errors import TargetError
from harness.transports.guard import OneTask, check_max_bytes
from harness.transports.usbports import UsbId, find_usb_id

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
RESET_HOLD = 0.1
"""Seconds DTR is held off (or the port closed) by a reset: the Uno's reset capacitor
recharges in a millisecond, and a program watching a pty sees the close."""


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


def has_modem_lines(port: serial.Serial) -> bool:
    """Whether the port has modem control lines (DTR): a USB-serial bridge has; a pty has not."""
    try:
        fcntl.ioctl(port.fileno(), termios.TIOCMGET, struct.pack("I", 0))
    except OSError:
        return False
    return True


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
    opening of the port (_Connection) is the stream that ends at a hang-up.

    `path` is where the port is now: a port with a `usb_id` is looked for by it when reopened,
    and `path` follows it when it comes back elsewhere."""

    def __init__(
        self,
        path: str,
        baud: int = BAUD,
        on_outage: Callable[[float, float | None], None] | None = None,
        usb_id: UsbId | None = None,
    ) -> None:
        self.path = path
        self.baud = baud
        self.usb_id = usb_id
        self._on_outage = on_outage or (lambda start, end: None)
        self._conn: _Connection | None = _Connection(open_port(path, baud))
        self._outage_start = 0.0
        self._backoff = BACKOFF_FIRST
        self._retry_at = 0.0
        self._closed = trio.Event()
        self._replacing: trio.Event | None = None
        """Set while a reset has the port closed; set when it is open again (or gone)."""
        self._sending = OneTask("sending on this stream")
        self._receiving = OneTask("receiving on this stream")

    async def reset(self, hold: float = RESET_HOLD) -> None:
        """Reset the board the way the Arduino IDE does: drop DTR for `hold` seconds, then
        raise it. A port with no modem lines is closed for `hold` and opened again, which drops
        and raises DTR on a real port too (and is what resets the simulator's
        `--reset-on-open` board). Nothing happens while the board is unplugged: there is
        nothing to reset. If the port does not open again, that is an outage."""
        conn = self._conn
        if conn is None or self._replacing is not None:
            await trio.lowlevel.checkpoint()
            return
        if has_modem_lines(conn.port):
            with contextlib.suppress(OSError):  # unplugged meanwhile: the receive sees it
                conn.port.dtr = False
                await trio.sleep(hold)
                if self._conn is conn:
                    conn.port.dtr = True
            return
        replaced = self._replacing = trio.Event()
        self._conn = None
        conn.close()  # a task reading it wakes and waits for `replaced`
        try:
            with trio.move_on_after(hold):
                await self._closed.wait()
            if not self._closed.is_set():
                with contextlib.suppress(TargetError):
                    self._conn = _Connection(open_port(self.path, self.baud))
        finally:
            if self._conn is None and not self._closed.is_set():
                self._begin_outage()  # not open again (gone, or the reset cut short)
            self._replacing = None
            replaced.set()

    def _hang_up(self, conn: _Connection) -> None:
        conn.close()
        self._conn = None
        self._begin_outage()

    def _begin_outage(self) -> None:
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
            port = await self._open_again()
            if port is None:
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
                self._retry_at = trio.current_time() + self._backoff
                continue
            self._conn = _Connection(port)
            self._on_outage(self._outage_start, trio.current_time())
            return self._conn

    async def _open_again(self) -> serial.Serial | None:
        """The port where its USB identity is now (else at its old path), or None if it is
        not back yet."""
        path = self.path
        if self.usb_id is not None:
            path = await trio.to_thread.run_sync(find_usb_id, self.usb_id) or path
        try:
            port = open_port(path, self.baud)
        except TargetError:
            return None
        self.path = path
        return port

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        check_max_bytes(max_bytes)
        with self._receiving:
            while True:
                if self._closed.is_set():
                    raise trio.ClosedResourceError("the stream was closed")
                if self._replacing is not None:
                    await self._replacing.wait()
                    continue
                conn = self._conn or await self._reopen()
                try:
                    data = await conn.receive_some(max_bytes)
                except trio.ClosedResourceError:
                    if self._closed.is_set():
                        raise
                    continue  # a reset let go of this opening of the port
                if data:
                    return data
                if conn is self._conn:
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
