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
