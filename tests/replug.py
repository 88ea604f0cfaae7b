"""A read across an unplug: for the tests of a serial stream that reopens its port."""

from __future__ import annotations

import trio

from harness.transports.pty import Pty
from harness.transports.serialport import SerialStream


async def read_across_the_outage(
    stream: SerialStream, outages: list[tuple[float, float | None]], port: Pty
) -> bytes:
    """What a read that waits through the outage gets: `port` sends a line once the stream has
    reported the outage's end (a port is opened with its input flushed, so not before)."""
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:

        async def read() -> None:
            got.append(await stream.receive_some(100))

        nursery.start_soon(read)
        with trio.fail_after(10):
            while len(outages) < 2:
                await trio.sleep(0.05)
            await port.stream.send_all(b"after\n")
    return got[0]
