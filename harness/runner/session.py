"""The host end of a run: a HostLink on a byte stream, driven in trio time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import trio

from harness.errors import TargetError
from harness.link import HostEvent, HostLink
from harness.transports.wakeable import Wakeable


class HostSession:
    def __init__(self, stream: trio.abc.Stream, on_event: Callable[[HostEvent], None]) -> None:
        self.stream = stream
        self.link = HostLink(now=trio.current_time())
        self._on_event = on_event
        self._waker = Wakeable()

    def send_command(self, name: str, args: Mapping[str, Any] | None = None) -> int:
        """Queue a command; its outcome comes as CommandDone/CommandFailed with this handle."""
        handle = self.link.send_command(name, args, now=trio.current_time())
        self._waker.wake()
        return handle

    async def run(self) -> None:
        """Until the stream ends: feed what arrives, run timers, write what the link says."""
        while True:
            out = self.link.data_to_send()
            if out:
                try:
                    await self.stream.send_all(out)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    raise TargetError(f"the device's stream broke while sending: {exc}") from None
            data = await self._waker.receive(self.stream, self.link.next_deadline())
            if data == b"":
                return
            now = trio.current_time()
            for event in self.link.feed(data, now) if data else self.link.poll(now):
                self._on_event(event)
