"""The mock target: MockDevice in this process, on an in-memory stream."""

from __future__ import annotations

from collections.abc import Callable

import trio

from harness.devices.mock import MockDevice, MockEvent
from harness.scenario.model import Scenario
from harness.transports.memory import memory_stream_pair


class MockTarget:
    name = "mock"
    capabilities = frozenset({"supply", "reset", "brownout", "virtual_time"})

    def __init__(
        self, scenario: Scenario, seed: int, on_event: Callable[[MockEvent], None]
    ) -> None:
        self.truth: MockDevice | None = MockDevice(
            profile=scenario.supply,
            spec=scenario.device,
            seed=seed,
            on_event=on_event,
            uart_rate=scenario.link.to_host.rate,  # the device's UART is the line's speed
        )

    async def start(self, nursery: trio.Nursery, origin: float) -> trio.abc.Stream:
        device_end, harness_end = memory_stream_pair()
        assert self.truth is not None
        nursery.start_soon(self.truth.run, device_end, origin)
        return harness_end

    def reset(self) -> None:
        assert self.truth is not None
        self.truth.reset()

    def describe(self) -> str:
        return "mock device (in process)"
