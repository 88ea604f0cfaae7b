"""A board's stream as it passes to the run, watched for the firmware's hellos: so the board
target knows when a device is there at all (the first hello after the port opened) and when a
reset has taken (the hello of the new boot), before the link's faults touch the bytes."""

from __future__ import annotations

from collections.abc import Callable

import trio

from harness.link import Direction, FrameError, Hello, decode
from harness.link.frame import LineSplitter


class HelloWatch(trio.abc.Stream):
    """Passes `stream` through both ways and counts the hellos that come from it: every hello
    (`hellos`) and the boot hellos (`boots`: sent at boot, not in answer to a command)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.hellos = 0
        self.boots = 0
        self._lines = LineSplitter()
        self._changed = trio.Event()

    async def wait_until(self, done: Callable[[], bool]) -> None:
        """Until `done()` holds, asked again at each hello."""
        while not done():
            await self._changed.wait()

    def _watch(self, data: bytes) -> None:
        for line in self._lines.feed(data, trio.current_time()):
            if not isinstance(line, bytes) or b'"hello"' not in line:
                continue
            try:
                message = decode(line, Direction.DEVICE_TO_HOST)
            except FrameError:
                continue
            if isinstance(message, Hello):
                self.hellos += 1
                self.boots += message.ack is None
                self._changed.set()
                self._changed = trio.Event()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.stream.receive_some(max_bytes)
        self._watch(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()
