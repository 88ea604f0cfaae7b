"""`harness monitor`: log a device continuously with no scenario (the seeds' 24/7 use). It is a
run that never ends by itself: a clean link, no steps, no expectations, until Ctrl-C."""

from __future__ import annotations

import math
from pathlib import Path

from harness.faults import LinkFaults
from harness.scenario.model import Device, DeviceSpec, Scenario
from harness.scenario.profile import Profile


def monitor_scenario(
    names: tuple[str, ...] = (), volts: float = 5.0, amps: float = 0.25
) -> Scenario:
    """Logging with no end, of the devices called `names` (none: one device, `dut`), on a
    rail of `volts` limited to `amps` (what a bench supply, if one is named, holds)."""
    devices = tuple(Device(name) for name in names)
    return Scenario(
        path=Path("monitor"),
        name="monitor",
        description="continuous logging",
        duration=math.inf,
        seed=0,
        link=LinkFaults(),
        supply=Profile.constant(volts, amps),
        device=DeviceSpec(),
        steps=(),
        expects=(),
        devices=devices,
    )
