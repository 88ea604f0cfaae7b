"""The fault injector in a run: two FaultyPipes between the device's stream and the host's,
each direction pumped by its own pair of trio tasks (take bytes in; let them out on time)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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

    def flush_events(self) -> None:
        events, self.pipe.events = self.pipe.events, []
        for event in events:
            self.on_fault(event)

    async def take_in(self, source: trio.abc.ReceiveStream) -> None:
        while data := await source.receive_some(RECEIVE_SIZE):
            self.pipe.send(data, trio.current_time())
            self.flush_events()
            self.waker.wake()

    async def let_out(self, sink: trio.abc.SendStream) -> None:
        while True:
            await self.waker.sleep(self.pipe.next_deadline())
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
            for task, stream in (
                (self._to_host.take_in, device),
                (self._to_host.let_out, host),
                (self._to_device.take_in, host),
                (self._to_device.let_out, device),
            ):
                nursery.start_soon(_then_stop, nursery.cancel_scope, task, stream)


async def _then_stop(
    scope: trio.CancelScope,
    task: Callable[[trio.abc.Stream], Awaitable[None]],
    stream: trio.abc.Stream,
) -> None:
    await task(stream)
    scope.cancel()
