"""The fault relay between a device's stream and the host's: on a clean link every complete line
passes at once and in order, however slowly the other side takes it; a faulty one still lets
frames out when they fall due."""

from __future__ import annotations

import trio
import trio.testing

from harness.faults import PARTIAL_FLUSH, FaultConfig, FaultEvent, LinkFaults
from harness.relay import FaultRelay
from harness.transports.memory import MemoryStream, memory_stream_pair


class SlowStream(trio.abc.Stream):
    """A stream whose writes take `delay` seconds each (a device that reads slowly), written
    down with the time each write ended; it refuses two writes at once, as every stream does."""

    def __init__(self, inner: MemoryStream, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.writes: list[tuple[float, bytes]] = []
        self._busy = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        assert not self._busy, "two tasks wrote at once"
        self._busy = True
        try:
            await trio.sleep(self.delay)
            self.writes.append((trio.current_time(), bytes(data)))
        finally:
            self._busy = False

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Link:
    """A relay between a device (its writes in `device_app`, its reads slow) and the host
    (`host_app`), and what reached the host, with when."""

    def __init__(self, faults: LinkFaults, delay: float) -> None:
        self.events: list[FaultEvent] = []
        self.relay = FaultRelay(faults, 1, self.events.append)
        self.device_app, device_relay = memory_stream_pair()
        self.host_app, self.host_relay = memory_stream_pair()
        self.device = SlowStream(device_relay, delay)
        self.received: list[tuple[float, bytes]] = []

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.relay.run, self.device, self.host_relay)
            while data := await self.host_app.receive_some():
                self.received.append((trio.current_time(), data))


async def test_a_clean_link_passes_each_line_at_once_and_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = Link(LinkFaults(), delay=0.05)
    lines = [f"line {i}\n".encode() for i in range(20)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.run)
        await trio.sleep(0.001)
        start = trio.current_time()
        for line in lines:  # the host writes faster than the device reads
            await link.host_app.send_all(line)
        await link.device_app.send_all(b"frame 1\nframe 2\npart")
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    # to the device: every line once, in order, one write at a time (SlowStream checks)
    assert b"".join(data for _, data in link.device.writes) == b"".join(lines)
    # to the host: the complete lines at once, the partial line after PARTIAL_FLUSH
    assert link.received == [(start, b"frame 1\nframe 2\n"), (start + PARTIAL_FLUSH, b"part")]
    assert link.events == []


async def test_a_delayed_link_lets_each_frame_out_when_it_falls_due(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = Link(LinkFaults(to_host=FaultConfig(delay=0.05)), delay=0.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.run)
        await trio.sleep(0.5)  # the relay's writer asleep with nothing to let out
        start = trio.current_time()
        await link.device_app.send_all(b"frame 1\n")
        await trio.sleep(0.01)
        await link.device_app.send_all(b"frame 2\n")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert link.received == [(start + 0.05, b"frame 1\n"), (start + 0.06, b"frame 2\n")]
