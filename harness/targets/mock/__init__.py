"""The mock target: a Python device that speaks the firmware's protocol (`device`: DeviceLink
plus an electrical model of an INA219 on the scenario's rail, `electrical`, `ina219`), run in
this process on an in-memory stream, or on a pty by `harness mock` (`serve`)."""

from __future__ import annotations

import trio

from harness.scenario.model import Scenario
from harness.targets.base import OnTargetEvent, PowerChange
from harness.targets.mock.device import MockDevice, MockEvent
from harness.transports.memory import memory_stream_pair


class MockTarget:
    name = "mock"
    capabilities = frozenset({"supply", "reset", "brownout", "virtual_time"})

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.device = MockDevice(
            profile=scenario.supply,
            spec=scenario.device,
            seed=seed,
            uart_rate=scenario.link.to_host.rate,  # the device's UART is the line's speed
        )
        self.truth: MockDevice | None = self.device

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        def report(event: MockEvent) -> None:
            if isinstance(event, PowerChange):
                on_event(event)

        self.device.on_event = report
        device_end, harness_end = memory_stream_pair()
        nursery.start_soon(self.device.run, device_end, origin)
        return harness_end

    def virtual_clock(self) -> trio.abc.Clock:
        """Virtual time: a MockClock that jumps ahead whenever every task waits."""
        from harness.targets import virtual_clock

        return virtual_clock("mock")

    async def reset(self) -> None:
        self.device.reset()
        await trio.lowlevel.checkpoint()

    def set_line_rate(self, rate: float | None) -> None:
        self.device.uart_rate = rate

    def describe(self) -> str:
        return "mock device (in process)"

    def stop(self) -> bool:
        """Nothing of it must end before the drain."""
        return False

    async def why_it_ended(self) -> str | None:
        return None
