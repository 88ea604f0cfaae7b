"""What a scenario file says, as values the runner executes (docs/scenarios.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.faults import LinkFaults
from harness.scenario.profile import Profile

DEFAULT_DEVICE = "dut"
"""The name of a scenario's one device when it names none: the store writes it on every row of
a single-device run (docs/architecture.md, Store)."""


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """The mock's (and the sim's) electrical setup."""

    shunt: float = 0.1
    noise_v: float = 0.002
    """Volts, standard deviation of one reading's noise."""
    noise_a: float = 0.0005
    """Amps, standard deviation of one reading's noise."""
    shared_rail: bool = False
    """The MCU runs from the monitored rail: below brownout volts it resets."""
    brownout: float = 2.7


# --- steps --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    command: str
    args: dict[str, Any]
    ack_within: float | None = None


@dataclass(frozen=True, slots=True)
class SetLink:
    faults: LinkFaults


@dataclass(frozen=True, slots=True)
class Outage:
    """Start an outage for `duration` seconds (None: until a stop), or stop one."""

    duration: float | None
    stop: bool = False


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset the MCU (mock: at once; sim: its reset line; board: a DTR pulse)."""


@dataclass(frozen=True, slots=True)
class Wait:
    duration: float


@dataclass(frozen=True, slots=True)
class WaitLog:
    """Hold the steps after it until a device log line matches `pattern` (searched in each whole
    line, as the link delivers them), for at most `timeout` seconds."""

    pattern: re.Pattern[str]
    timeout: float

    def matches(self, text: str) -> bool:
        return self.pattern.search(text) is not None


Action = Send | SetLink | Outage | Reset | Wait | WaitLog


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    """1-based position in the file ([[step]] number)."""
    name: str
    at: float
    """When it runs; after a step that waits (`wait_log`), the earliest time it may."""
    action: Action
    after_wait: bool = False
    """A step before it waits for something the run sees: its time is known only then."""

    @property
    def label(self) -> str:
        return f"step[{self.number}] {self.name}"


# --- expectations -------------------------------------------------------------------------


class Check(Protocol):
    """What one expectation checks: its kind's frozen dataclass (harness.scenario.expect)."""

    def describe(self) -> str:
        """The expectation's label when the file gives it no name."""
        ...


@dataclass(frozen=True, slots=True)
class Expect:
    number: int
    check: Check
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.check.describe()


@dataclass(frozen=True, slots=True)
class Scenario:
    path: Path
    name: str
    description: str
    duration: float
    seed: int
    link: LinkFaults
    supply: Profile
    device: DeviceSpec
    steps: tuple[Step, ...]
    expects: tuple[Expect, ...]
    needs: tuple[str, ...] = field(default=())
    """Capabilities a target must have (e.g. "supply" to drive the rail, "reset")."""
    parity: dict[str, str] = field(default_factory=dict)
    """By expectation label: why its verdict on the mock and on the sim may differ (the
    parity test holds every other expectation equal on both)."""

    @property
    def file(self) -> str:
        return self.path.name
