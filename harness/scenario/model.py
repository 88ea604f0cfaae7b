"""What a scenario file says, as values the runner executes (docs/scenarios.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.faults import LinkFaults
from harness.scenario.profile import Profile
from harness.scenario.units import format_duration

Window = tuple[float, float]


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


Action = Send | SetLink | Outage | Reset | Wait


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    """1-based position in the file ([[step]] number)."""
    name: str
    at: float
    action: Action

    @property
    def label(self) -> str:
        return f"step[{self.number}] {self.name}"


# --- expectations -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertExpect:
    status: str
    window: Window | None
    absent: bool = False


@dataclass(frozen=True, slots=True)
class StatExpect:
    measure: str
    """v, a or w."""
    stat: str
    """min, max or avg."""
    window: Window | None
    below: float | None
    above: float | None


@dataclass(frozen=True, slots=True)
class AckExpect:
    within: float
    command: str | None = None
    step: int | None = None
    """Only the command of this [[step]] number (from a step's ack_within)."""


@dataclass(frozen=True, slots=True)
class LinkExpect:
    limits: dict[str, int]
    """Link totals and their upper bounds."""


@dataclass(frozen=True, slots=True)
class ResetsExpect:
    count: int


@dataclass(frozen=True, slots=True)
class RecoveryExpect:
    after: str
    """Name of the step whose fault burst it measures from."""
    within: float


Check = AlertExpect | StatExpect | AckExpect | LinkExpect | ResetsExpect | RecoveryExpect

LINK_TOTALS = (
    "lost",
    "duplicated",
    "commands_failed",
    "commands_executed_twice",
    "retransmissions",
    "corrupt",
    "gaps",
    "lost_to_resets",
)
"""Link totals an expectation may bound (names as in the run record)."""


@dataclass(frozen=True, slots=True)
class Expect:
    number: int
    check: Check
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or describe(self.check)


def _window(w: Window | None) -> str:
    return "whole run" if w is None else f"{format_duration(w[0])}..{format_duration(w[1])}"


def describe(c: Check) -> str:
    match c:
        case AlertExpect(absent=True):
            return f"no {c.status} alert ({_window(c.window)})"
        case AlertExpect():
            return f"{c.status} alert within {_window(c.window)}"
        case StatExpect():
            bounds = []
            if c.below is not None:
                bounds.append(f"< {c.below:g}")
            if c.above is not None:
                bounds.append(f"> {c.above:g}")
            return f"{c.stat} {c.measure} over {_window(c.window)} {' and '.join(bounds)}"
        case AckExpect(step=int()):
            return f"step[{c.step}] {c.command} acknowledged within {format_duration(c.within)}"
        case AckExpect():
            what = c.command or "every command"
            return f"{what} acknowledged within {format_duration(c.within)}"
        case LinkExpect():
            return "link: " + ", ".join(f"{k} <= {v}" for k, v in c.limits.items())
        case ResetsExpect():
            return f"device resets seen = {c.count}"
        case RecoveryExpect():
            return f"recovered within {format_duration(c.within)} after {c.after}"
    raise TypeError(c)


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

    @property
    def file(self) -> str:
        return self.path.name
