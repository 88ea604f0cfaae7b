"""The fault injector in a run: two FaultyPipes between the device's stream and the host's,
each direction pumped by its own pair of trio tasks (take bytes in and send on what is due at
once; let the rest out on time)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from harness.faults import FaultEvent, FaultyPipe, LinkFaults
from harness.transports.wakeable import RECEIVE_SIZE, Wakeable

TO_HOST = "to_host"
TO_DEVICE = "to_device"


class _Direction:
    def __init__(self, pipe: FaultyPipe, on_fault: Callable[[FaultEvent], None]) -> None:
        self.pipe = pipe
        self.on_fault = on_fault
        self.waker = Wakeable()
        self.sending = trio.Lock()
        """Held by whichever task writes to the sink: one write at a time, in the pipe's order."""
        self.asleep_until = -math.inf
        """The deadline let_out sleeps until; -inf while it is awake (it looks at the pipe's
        next deadline again before it sleeps)."""

    def flush_events(self) -> None:
        events, self.pipe.events = self.pipe.events, []
        for event in events:
            self.on_fault(event)

    async def take_in(self, source: trio.abc.ReceiveStream, sink: trio.abc.SendStream) -> None:
        """Put what arrives into the pipe and send on at once what the pipe lets out now (on a
        clean link: every complete line), rather than wake let_out for it; let_out is woken
        only when it must let something out sooner than it planned to."""
        while data := await source.receive_some(RECEIVE_SIZE):
            now = trio.current_time()
            self.pipe.send(data, now)
            self.flush_events()
            try:
                self.sending.acquire_nowait()
            except trio.WouldBlock:  # let_out is writing: it takes this once it has written
                self.waker.wake()
                continue
            try:
                out = self.pipe.receive(now)
                self.flush_events()
                deadline = self.pipe.next_deadline()
                if deadline is not None and deadline < self.asleep_until:
                    self.waker.wake()
                if out:
                    await sink.send_all(out)
            finally:
                self.sending.release()

    async def let_out(self, sink: trio.abc.SendStream) -> None:
        """Send on what the pipe lets out later: delayed, paced, held back, a partial line."""
        while True:
            deadline = self.pipe.next_deadline()
            self.asleep_until = math.inf if deadline is None else deadline
            await self.waker.sleep(deadline)
            self.asleep_until = -math.inf
            async with self.sending:
                data = self.pipe.receive(trio.current_time())
                self.flush_events()
                if data:
                    await sink.send_all(data)


class FaultRelay:
    """Sits between any target and the host; change its faults or cut the link at any time."""

    def __init__(
        self, faults: LinkFaults, seed: int, on_fault: Callable[[FaultEvent], None]
    ) -> None:
        self._to_host = _Direction(FaultyPipe(faults.to_host, seed, TO_HOST), on_fault)
        self._to_device = _Direction(FaultyPipe(faults.to_device, seed, TO_DEVICE), on_fault)

    @property
    def faults(self) -> LinkFaults:
        """The faults in force now."""
        return LinkFaults(self._to_host.pipe.config, self._to_device.pipe.config)

    def set_faults(self, faults: LinkFaults) -> None:
        self._to_host.pipe.set_config(faults.to_host)
        self._to_device.pipe.set_config(faults.to_device)
        self._wake()

    def start_outage(self, duration: float | None) -> None:
        now = trio.current_time()
        for d in (self._to_host, self._to_device):
            d.pipe.start_outage(now, duration)
        self._wake()

    def stop_outage(self) -> None:
        now = trio.current_time()
        for d in (self._to_host, self._to_device):
            d.pipe.stop_outage(now)
        self._wake()

    def in_outage(self) -> bool:
        return self._to_host.pipe.in_outage(trio.current_time())

    def _wake(self) -> None:
        for d in (self._to_host, self._to_device):
            d.flush_events()
            d.waker.wake()

    async def run(self, device: trio.abc.Stream, host: trio.abc.Stream) -> None:
        """Pump both directions until either side's stream ends (then the relay returns)."""
        async with trio.open_nursery() as nursery:
            for task in (
                partial(self._to_host.take_in, device, host),
                partial(self._to_host.let_out, host),
                partial(self._to_device.take_in, host, device),
                partial(self._to_device.let_out, device),
            ):
                nursery.start_soon(_then_stop, nursery.cancel_scope, task)


async def _then_stop(scope: trio.CancelScope, task: Callable[[], Awaitable[None]]) -> None:
    await task()
    scope.cancel()
