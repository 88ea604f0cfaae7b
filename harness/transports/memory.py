"""In-memory byte streams: the mock and the harness in one process, virtual time allowed."""

from __future__ import annotations

import math

import trio


class MemoryStream(trio.abc.Stream):
    """One end of an in-memory pipe pair. Unbounded: a writer never waits for a reader, as a
    UART never waits for the other side."""

    def __init__(
        self, send: trio.MemorySendChannel[bytes], receive: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        self._send = send
        self._receive = receive
        self._leftover = b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            try:
                self._send.send_nowait(bytes(data))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise trio.BrokenResourceError("the other end is closed") from None
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._leftover:
            try:
                self._leftover = await self._receive.receive()
            except trio.EndOfChannel:
                return b""
        if max_bytes is None or max_bytes >= len(self._leftover):
            data, self._leftover = self._leftover, b""
        else:
            data, self._leftover = self._leftover[:max_bytes], self._leftover[max_bytes:]
        return data

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def memory_stream_pair() -> tuple[MemoryStream, MemoryStream]:
    """Two connected streams: what one sends, the other receives."""
    a_send, b_receive = trio.open_memory_channel[bytes](math.inf)
    b_send, a_receive = trio.open_memory_channel[bytes](math.inf)
    return MemoryStream(a_send, a_receive), MemoryStream(b_send, b_receive)
