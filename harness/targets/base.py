"""What every target offers the runner: the `Target` protocol, the `Truth` a target may expose
of a device it runs itself, and the one kind of callback through which every target reports
what happens to the device beyond its byte stream."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

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


TargetEvent = PowerChange | PortChange
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
    "virtual_time" (run under a MockClock)."""
    truth: Truth | None
    """The device itself when the harness can look inside it (the mock), else None."""

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        """Start the device in `nursery` (scenario time 0 is `origin`) and return the stream to
        it; power and port changes are reported to `on_event` as they happen."""
        ...

    def reset(self) -> None:
        """Reset the MCU."""
        ...

    def set_line_rate(self, rate: float | None) -> None:
        """The line's bytes/s changed (a link step's baud): a device whose UART the harness
        models follows it; a real one has its own clock and ignores it."""
        ...

    def describe(self) -> str:
        """One line: what the run talks to."""
        ...

    async def why_it_ended(self) -> str | None:
        """After the device's stream ended: why, if the target knows (e.g. a runner's exit)."""
        ...
