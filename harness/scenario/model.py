"""What a scenario file says, as values the runner executes (docs/scenarios.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
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


TARGETS = ("mock", "sim", "board")
"""Where a device runs (harness.targets)."""
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
"""A device's name: what `--serial NAME=PATH`, the store's rows and the viewer's pages use."""


@dataclass(frozen=True, slots=True)
class Device:
    """One device a scenario runs: its name, where it is, and its mock's (and sim's) setup."""

    name: str = DEFAULT_DEVICE
    spec: DeviceSpec = field(default_factory=DeviceSpec)
    link: LinkFaults = field(default_factory=LinkFaults)
    """Its link's faults at the start: the scenario's [link], with the entry's own changes."""
    target: str | None = None
    """mock, sim or board; None: the run's (--target)."""
    serial: str | None = None
    """A board's port; None: `--serial NAME=PATH`, else found by its USB id."""


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
    device: str | None = None
    """The device it acts on; None: each of the scenario's devices."""

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
    device: str | None = None
    """The device it judges; None: each of the scenario's devices, each on its own."""

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
    devices: tuple[Device, ...] = ()
    """The devices it runs, in the file's order; none given: one called `dut`, with the
    scenario's [device] setup and [link]."""

    def __post_init__(self) -> None:
        if not self.devices:
            object.__setattr__(self, "devices", (Device(DEFAULT_DEVICE, self.device, self.link),))

    @property
    def file(self) -> str:
        return self.path.name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.devices)

    def for_device(self, name: str) -> Scenario:
        """The scenario as one device runs it: that device's setup and link, the steps and
        expectations that name it or none. A scenario of one device is its own."""
        if len(self.devices) == 1 and self.devices[0].name == name:
            return self
        (device,) = (d for d in self.devices if d.name == name)
        steps = tuple(s for s in self.steps if s.device in (None, name))
        mine = {
            "supply": True,  # the profile is every device's
            "reset": any(isinstance(s.action, Reset) for s in steps),
            "brownout": device.spec.shared_rail,
        }
        return replace(
            self,
            device=device.spec,
            link=device.link,
            steps=steps,
            expects=tuple(e for e in self.expects if e.device in (None, name)),
            needs=tuple(n for n in self.needs if mine.get(n, True)),
            devices=(device,),
        )
