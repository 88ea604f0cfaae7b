"""In-memory byte streams: the mock and the harness in one process, virtual time allowed."""

from __future__ import annotations

import math

import trio

from harness.transports.guard import OneTask, check_max_bytes


class MemoryStream(trio.abc.Stream):
    """One end of an in-memory pipe pair. Unbounded: a writer never waits for a reader, as a
    UART never waits for the other side. Closing one end ends the other's reads (after what
    was sent) and breaks its writes."""

    def __init__(
        self, send: trio.MemorySendChannel[bytes], receive: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        self._send = send
        self._receive = receive
        self._leftover = b""
        self._closed = False
        self._sending = OneTask("sending on this stream")
        self._receiving = OneTask("receiving on this stream")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._sending:
            if self._closed:
                raise trio.ClosedResourceError("this end is closed")
            # A cancelled send sends nothing: the cancel point comes before the bytes go.
            await trio.lowlevel.checkpoint_if_cancelled()
            if data:
                try:
                    self._send.send_nowait(bytes(data))
                except trio.BrokenResourceError:
                    raise trio.BrokenResourceError("the other end is closed") from None
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        with self._sending:
            if self._closed:
                raise trio.ClosedResourceError("this end is closed")
            await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """What one send_all gave (or its rest), at most max_bytes of it."""
        check_max_bytes(max_bytes)
        with self._receiving:
            if self._closed:
                raise trio.ClosedResourceError("this end is closed")
            if self._leftover:
                await trio.lowlevel.checkpoint()
            else:
                try:
                    self._leftover = await self._receive.receive()
                except trio.EndOfChannel:
                    # The channel ends without a schedule point when it had already ended.
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return b""
            if max_bytes is None or max_bytes >= len(self._leftover):
                data, self._leftover = self._leftover, b""
            else:
                data, self._leftover = self._leftover[:max_bytes], self._leftover[max_bytes:]
            return data

    async def aclose(self) -> None:
        """Closes at once (a blocked receive here raises ClosedResourceError), then checkpoints:
        a cancelled aclose has still closed."""
        self._closed = True
        self._leftover = b""
        self._send.close()
        self._receive.close()
        await trio.lowlevel.checkpoint()


def memory_stream_pair() -> tuple[MemoryStream, MemoryStream]:
    """Two connected streams: what one sends, the other receives."""
    a_send, b_receive = trio.open_memory_channel[bytes](math.inf)
    b_send, a_receive = trio.open_memory_channel[bytes](math.inf)
    return MemoryStream(a_send, a_receive), MemoryStream(b_send, b_receive)
