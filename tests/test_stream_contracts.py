"""The transports that are trio streams pass trio's own stream checks: check_two_way_stream
runs check_one_way_stream each way, then a duplex transfer. None of them is half-closeable (no
send_eof): the link over them is a serial line, which has no end-of-file of one direction."""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from trio.testing import check_two_way_stream

from harness.transports.memory import MemoryStream, memory_stream_pair
from harness.transports.pty import Pty, _PtyServerStream, open_pty_client
from harness.transports.serialport import BACKOFF_FIRST, SerialStream, _Connection, open_port

CHECK_TIMEOUT = 30  # a check that hangs fails instead
FULL_AFTER_MS = 50


async def memory_pair() -> tuple[MemoryStream, MemoryStream]:
    return memory_stream_pair()


async def test_memory_stream_pair_passes_trios_two_way_checks() -> None:
    # No clogged maker: the pair is unbounded (a writer never waits), so nothing clogs it.
    with trio.fail_after(CHECK_TIMEOUT):
        await check_two_way_stream(memory_pair, None)


class Unread:
    """Bytes the Pty's end has sent that the port end has not read yet, and whether the port
    end has closed."""

    def __init__(self) -> None:
        self.count = 0
        self.port_closed = False
        self._changed = trio.Event()

    def add(self, n: int) -> None:
        self.count += n

    def took(self, n: int) -> None:
        self.count -= n
        self._wake()

    def close(self) -> None:
        self.port_closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def all_read(self) -> None:
        while self.count > 0 and not self.port_closed:
            await self._changed.wait()


class DeliveringEnd(trio.abc.Stream):
    """The Pty's end, with a graceful close that first waits until the port end has read what
    was sent. When the Pty's end closes, the kernel hangs up the port end and drops the bytes it
    has not read, and the Pty's end cannot see how many those are; so without this wait a pty
    fails the one check that wants a graceful close to deliver (send, close, the receiver still
    gets the bytes). Every other check runs on the Pty's end as it is."""

    def __init__(self, inner: trio.abc.Stream, unread: Unread) -> None:
        self._inner = inner
        self._unread = unread

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)
        self._unread.add(len(data))

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        try:
            await self._unread.all_read()
        finally:
            await self._inner.aclose()


class CountingPortEnd(trio.abc.Stream):
    """A port end as it is, telling `unread` what it read and when it closed."""

    def __init__(self, inner: trio.abc.Stream, unread: Unread) -> None:
        self._inner = inner
        self._unread = unread

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self._inner.receive_some(max_bytes)
        self._unread.took(len(data))
        return data

    async def aclose(self) -> None:
        self._unread.close()
        await self._inner.aclose()


def fill(fd: int) -> int:
    """Write to a pty end until it takes no more, so that a send on it waits for a receive; how
    many bytes it took. The kernel moves bytes on between the pty's buffers after a write, so an
    end that refused a byte can take more a moment later: it is full once it stays unwritable."""
    os.set_blocking(fd, False)
    writable = select.poll()
    writable.register(fd, select.POLLOUT)
    taken = 0
    while True:
        size = 4096
        while size:
            try:
                taken += os.write(fd, b"x" * size)
            except BlockingIOError:
                size //= 2
        if not writable.poll(FULL_AFTER_MS):
            return taken


def pty_ends(
    open_port_end: Callable[[str], trio.abc.Stream], clogged: bool
) -> tuple[trio.abc.Stream, trio.abc.Stream]:
    """The stream a Pty serves, and its port end opened by `open_port_end`. A Pty also holds the
    port end open itself, so that programs can come and go on the port without its own end
    seeing a hang-up; the checks want the port end's close to reach the other end, so here
    nothing else holds it."""
    server, port = os.openpty()
    client = open_port_end(os.ttyname(port))
    unread = Unread()
    if clogged:
        unread.add(fill(server))
        fill(port)
    os.close(port)
    return DeliveringEnd(_PtyServerStream(server), unread), CountingPortEnd(client, unread)


async def test_pty_streams_pass_trios_two_way_checks() -> None:
    """Pty's stream and open_pty_client's, over one pty."""

    async def pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        return pty_ends(open_pty_client, clogged=False)

    async def clogged_pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        return pty_ends(open_pty_client, clogged=True)

    with trio.fail_after(CHECK_TIMEOUT):
        await check_two_way_stream(pair, clogged_pair)


def open_serial_connection(path: str) -> trio.abc.Stream:
    return _Connection(open_port(path))


async def test_serial_port_openings_pass_trios_two_way_checks() -> None:
    """What SerialStream reads and writes through: one opening of the port by pyserial (here the
    port end of a pty, as the mock serves the board's protocol). SerialStream itself cannot pass
    the checks on the other end closing: for a serial port that is an unplug, which SerialStream
    rides out (reads wait for the port to come back, writes meanwhile are lost) instead of
    ending. Its own end keeps the contract: see the next test."""

    async def pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        return pty_ends(open_serial_connection, clogged=False)

    async def clogged_pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        return pty_ends(open_serial_connection, clogged=True)

    with trio.fail_after(CHECK_TIMEOUT):
        await check_two_way_stream(pair, clogged_pair)


async def test_serial_stream_keeps_trios_rules_for_its_own_end_during_an_outage(
    tmp_path: Path,
) -> None:
    """What trio's checks ask of a stream's own end, asked of a SerialStream whose port has gone:
    bad sizes refused, one receiver at a time, a close that wakes the receive waiting out the
    outage, ClosedResourceError after the close, and no reopening of the port after it."""
    link = tmp_path / "ttyARDUINO"
    pty = Pty()
    link.symlink_to(pty.path)
    outages: list[tuple[float, float | None]] = []
    stream = SerialStream(str(link), on_outage=lambda s, e: outages.append((s, e)))
    for size, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError)):
        with pytest.raises(error):
            await stream.receive_some(size)  # type: ignore[arg-type]
    await pty.aclose()
    second = Pty()  # the port is back at its path, but only after the close below
    link.unlink()

    async def receive_until_closed() -> None:
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive_some(100)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_until_closed)
            while not outages:
                await trio.sleep(0.01)
            with pytest.raises(trio.BusyResourceError):
                await stream.receive_some(100)
            await stream.send_all(b"lost on the unplugged wire")
            await stream.wait_send_all_might_not_block()
            await stream.aclose()
    link.symlink_to(second.path)
    await trio.sleep(BACKOFF_FIRST * 8)  # past three retries: none may reopen the port
    for call in (
        lambda: stream.receive_some(100),
        lambda: stream.send_all(b""),
        stream.wait_send_all_might_not_block,
    ):
        with pytest.raises(trio.ClosedResourceError):
            await call()
    await stream.aclose()
    assert outages == [(outages[0][0], None)]
    await second.aclose()
