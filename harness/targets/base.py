"""What every target offers the runner: the `Target` protocol, the `Truth` a target may expose
of a device it runs itself, and the one kind of callback through which every target reports
what happens to the device beyond its byte stream (its power, its port, its sensor's limits,
and the bench supply feeding its rail when the run drives one)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import trio


@dataclass(frozen=True, slots=True)
class PowerChange:
    """The device's MCU lost power (boot is None) or booted (boot is its new counter)."""

    at: float
    """Trio time."""
    boot: int | None
    cause: str


@dataclass(frozen=True, slots=True)
class PortChange:
    """The port to the device went away (unplugged) or came back (replugged)."""

    at: float
    """Trio time."""
    state: Literal["unplugged", "replugged"]
    port: str
    """The port's path, as the run was given it or found it."""


@dataclass(frozen=True, slots=True)
class SensorOverMax:
    """The rail went above the sensor's absolute maximum rating (over), or came back within it:
    the simulator's INA219 (26 V) says so; a real chip may not survive it."""

    at: float
    """Trio time."""
    volts: float
    over: bool


@dataclass(frozen=True, slots=True)
class SupplyOpened:
    """The bench supply feeding the device's rail answered (before its output goes on)."""

    at: float
    """Trio time."""
    name: str
    """As the user named it, e.g. "scpi:TCPIP::192.168.1.50::5025::SOCKET"."""
    identity: str
    """Its `*IDN?` answer (a manual supply's: that it is set by hand)."""
    describe: str
    """One line: what it is and how it is driven."""
    limits: Mapping[str, float | None]
    """max_volts, max_amps, max_slew, safe_volts."""
    limits_from: str
    """Where the limits came from: a bench file's path, or "scenario" (the profile's own)."""
    limits_text: str
    """The limits in force, in one line."""
    by_hand: bool
    """A person applies each setting (the manual supply)."""


@dataclass(frozen=True, slots=True)
class SupplySet:
    """The bench supply acknowledged a setting: it took effect at `at`."""

    at: float
    """Trio time of the acknowledgement."""
    what: Literal["volts", "current_limit", "output"]
    value: float | bool
    due: float
    """Trio time the profile wanted it."""
    sent: float
    """Trio time the request went out."""
    point: int | None
    """The profile point it reaches (numbered from 1), None for a ramp step, the start's
    current limit and output, or the end."""
    skipped: int = 0
    """Planned settings skipped so far because the supply was behind (the next was due)."""


@dataclass(frozen=True, slots=True)
class SupplyRead:
    """The bench supply's own measurement of its output."""

    at: float
    """Trio time it was taken."""
    volts: float
    amps: float


@dataclass(frozen=True, slots=True)
class SupplySaid:
    """A line for the person at the bench (a manual supply's announcement or countdown)."""

    at: float
    """Trio time."""
    text: str


SupplyEvent = SupplyOpened | SupplySet | SupplyRead | SupplySaid
TargetEvent = PowerChange | PortChange | SensorOverMax | SupplyEvent
OnTargetEvent = Callable[[TargetEvent], None]


class Truth(Protocol):
    """The inside of a device the harness runs itself (the mock): what it produced and executed,
    so a run can count losses against the device's own tally rather than skipped seqs."""

    @property
    def boot(self) -> int | None:
        """The running boot's counter; None while the MCU has no power."""
        ...

    @property
    def produced(self) -> Mapping[int, int]:
        """Samples closed, by boot: what the host should receive."""
        ...

    @property
    def executed(self) -> Mapping[tuple[int, int], int]:
        """Commands executed, by (boot, seq)."""
        ...


class Target(Protocol):
    name: str
    capabilities: frozenset[str]
    """What it can do beyond talking: "supply" (follow the profile), "reset", "brownout",
    "virtual_time" (run in virtual time on the clock it gives, `VirtualTime`)."""
    truth: Truth | None
    """The device itself when the harness can look inside it (the mock), else None."""

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        """Start the device in `nursery` (scenario time 0 is `origin`) and return the stream to
        it; power and port changes are reported to `on_event` as they happen."""
        ...

    async def reset(self) -> None:
        """Reset the MCU; returns once the reset has taken (a board: once its new boot said
        hello), so the steps after it find the new boot. Raises TargetError if it did not."""
        ...

    def set_line_rate(self, rate: float | None) -> None:
        """The line's bytes/s changed (a link step's baud): a device whose UART the harness
        models follows it; a real one has its own clock and ignores it."""
        ...

    def describe(self) -> str:
        """One line: what the run talks to."""
        ...

    def stop(self) -> bool:
        """The run was stopped (Ctrl-C, SIGTERM): end at once what must not wait for the
        link's drain (a bench supply's output). True when that took the device's power (a
        supply's output that feeds the MCU too): it has nothing left to send."""
        ...

    async def why_it_ended(self) -> str | None:
        """After the device's stream ended: why, if the target knows (e.g. a runner's exit)."""
        ...


@runtime_checkable
class VirtualTime(Protocol):
    """A target that runs in virtual time (capability "virtual_time") gives the run its clock:
    the mock a MockClock that jumps whenever every task waits, the sim the simulator's time."""

    def virtual_clock(self) -> trio.abc.Clock:
        """The clock of a run in virtual time (`--fast`), made before the run starts."""
        ...
