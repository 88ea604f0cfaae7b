"""A pseudo-terminal: the mock serves its end as a serial port another program can open."""

from __future__ import annotations

import os
import tty

import trio


class Pty:
    """A pty pair in raw mode. `stream` is our end; `path` (e.g. /dev/pts/5) is the port a
    serial terminal or the harness opens. We keep the port's end open too, so our end never
    sees a hang-up between two programs using the port."""

    def __init__(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.stream = trio.lowlevel.FdStream(master)

    async def aclose(self) -> None:
        await self.stream.aclose()
        os.close(self._slave)


class _PtyClientStream(trio.abc.Stream):
    """The port end of someone else's pty: when they close it, reads end (EOF) instead of
    failing with EIO."""

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
