"""A receive that also ends at a deadline or when another task wakes it — how every loop around
a sans-IO state machine waits: for bytes, for its next timer, or for new work."""

from __future__ import annotations

import math

import trio

RECEIVE_SIZE = 4096


class Wakeable:
    def __init__(self) -> None:
        self._scope: trio.CancelScope | None = None
        self._woken = False

    def wake(self) -> None:
        """Make the current (or next) wait return at once. Safe from any task."""
        self._woken = True
        if self._scope is not None:
            self._scope.cancel()

    async def receive(self, stream: trio.abc.ReceiveStream, deadline: float | None) -> bytes | None:
        """Bytes from the stream; None when the deadline passed or `wake` was called first.
        Returns b"" at end of stream."""
        if self._woken:
            self._woken = False
            await trio.lowlevel.checkpoint()
            return None
        with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
            self._scope = scope
            try:
                return await stream.receive_some(RECEIVE_SIZE)
            finally:
                self._scope = None
                self._woken = False
        return None

    async def sleep(self, deadline: float | None) -> None:
        """Sleep until the deadline or a `wake`."""
        if self._woken:
            self._woken = False
            await trio.lowlevel.checkpoint()
            return
        with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
            self._scope = scope
            try:
                await trio.sleep_forever()
            finally:
                self._scope = None
                self._woken = False
