"""Where the device under test runs: `mock` (Python, in process), `sim` (the firmware in
simavr), `board` (a real Arduino on a serial port). Each gives the runner a byte stream and
reports power and port changes through one callback (`harness.targets.base`)."""

from __future__ import annotations

from pathlib import Path

import trio

from harness.errors import UserError
from harness.scenario.model import TARGETS, Scenario
from harness.targets.base import (
    OnTargetEvent,
    PortChange,
    PowerChange,
    SensorOverMax,
    SupplyEvent,
    SupplyOpened,
    SupplyRead,
    SupplySaid,
    SupplySet,
    Target,
    TargetEvent,
    Truth,
)

__all__ = [
    "TARGETS",
    "OnTargetEvent",
    "PortChange",
    "PowerChange",
    "SensorOverMax",
    "SupplyEvent",
    "SupplyOpened",
    "SupplyRead",
    "SupplySaid",
    "SupplySet",
    "Target",
    "TargetEvent",
    "Truth",
    "make_target",
    "virtual_clock",
]


def make_target(
    name: str,
    scenario: Scenario,
    seed: int,
    serial: str | None = None,
    sim_eeprom: Path | None = None,
    hello_timeout: float | None = None,
) -> Target:
    """The target called `name`: the board on `serial` (None: found by its USB id), which has
    `hello_timeout` seconds to say hello (None: its default), and as long for its port to
    appear if the scenario's rail powers it; the sim with its EEPROM in `sim_eeprom` (None: a
    scratch one for this run)."""
    if name == "mock":
        from harness.targets.mock import MockTarget

        return MockTarget(scenario, seed)
    if name == "board":
        from harness.targets.board import HELLO_TIMEOUT, BoardTarget

        timeout = hello_timeout or HELLO_TIMEOUT
        # A board on the rail enumerates only once the bench supply (started at 0 s) is on.
        port_wait = timeout if scenario.device.shared_rail else 0.0
        return BoardTarget(serial, hello_timeout=timeout, port_wait=port_wait)
    if name == "sim":
        from harness.targets.sim import SimTarget

        return SimTarget(scenario, seed, sim_eeprom)
    raise UserError(f"--target {name}: unknown target; choose one of {', '.join(TARGETS)}")


def virtual_clock(name: str) -> trio.abc.Clock:
    """A trio loop's clock for runs in virtual time on the target called `name`, one after
    another (the pytest plugin's tests): the mock's MockClock; the sim's SimClock, which each
    sim started under it takes in turn. A board has none: it runs in real time."""
    if name == "mock":
        from trio.testing import MockClock  # only here: it imports pytest when installed

        return MockClock(autojump_threshold=0)
    if name == "sim":
        from harness.targets.simclock import SimClock

        return SimClock()
    raise UserError(f"--target {name}: runs in real time only, not in virtual time")
