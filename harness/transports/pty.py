"""A pseudo-terminal: the mock serves its end as a serial port another program can open."""

from __future__ import annotations

import errno
import os
import select
import tty

import trio

from harness.transports.guard import OneTask


def _hung_up(fd: int) -> bool:
    """Whether no program holds the port end of the pty whose own end is `fd`."""
    poller = select.poll()
    poller.register(fd, select.POLLHUP)
    return bool(poller.poll(0))


class _PtyServerStream(trio.abc.Stream):
    """The pty's own end (the master). With no program holding the port end open the kernel
    reports a hang-up: reads fail with EIO, which here is the end of the stream (after what was
    sent), and writes go to a buffer nobody reads, so once it is full send_all raises
    BrokenResourceError. Closing this end hangs up the port end, and the kernel drops what the
    port end has not read yet."""

    def __init__(self, fd: int) -> None:
        self._fd = trio.lowlevel.FdStream(fd)
        self._sending = OneTask("sending on this stream")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            return await self._fd.receive_some(max_bytes)
        except trio.BrokenResourceError:
            return b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        # FdStream's own send_all would go round forever once the buffer is full and the port
        # end has gone: the hang-up wakes its wait for writability, but the write still would
        # block. So a write that would block looks for the hang-up first.
        with self._sending:
            if self._fd.fileno() < 0:
                raise trio.ClosedResourceError("this end is closed")
            await trio.lowlevel.checkpoint()
            with memoryview(data) as view:
                sent = 0
                while sent < len(view):
                    fd = self._fd.fileno()
                    try:
                        sent += os.write(fd, view[sent:])
                    except BlockingIOError:
                        if _hung_up(fd):
                            raise trio.BrokenResourceError("no program has the port open") from None
                        await trio.lowlevel.wait_writable(fd)
                    except OSError as exc:
                        if exc.errno == errno.EBADF:
                            raise trio.ClosedResourceError("this end is closed") from None
                        raise trio.BrokenResourceError from exc

    async def wait_send_all_might_not_block(self) -> None:
        with self._sending:
            await self._fd.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._fd.aclose()


class Pty:
    """A pty pair in raw mode. `stream` is our end; `path` (e.g. /dev/pts/5) is the port a
    serial terminal or the harness opens. We keep the port's end open too, so our end never
    sees a hang-up between two programs using the port."""

    def __init__(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.stream: trio.abc.Stream = _PtyServerStream(master)

    async def aclose(self) -> None:
        await self.stream.aclose()
        os.close(self._slave)


class _PtyClientStream(trio.abc.Stream):
    """The port end of someone else's pty: when they close it, reads end (EOF) instead of
    failing with EIO, and writes raise BrokenResourceError."""

    def __init__(self, fd: int) -> None:
        self._fd = trio.lowlevel.FdStream(fd)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            return await self._fd.receive_some(max_bytes)
        except (OSError, trio.BrokenResourceError):
            return b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._fd.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._fd.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._fd.aclose()


def open_pty_client(path: str) -> trio.abc.Stream:
    """Open a pty's port end (as a serial terminal would), raw: no echo, no line editing."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return _PtyClientStream(fd)
