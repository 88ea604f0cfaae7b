"""Where the device under test runs: `mock` (Python, in process), `sim` (the firmware in
simavr), `board` (a real Arduino on a serial port). Each gives the runner a byte stream."""

from __future__ import annotations

from typing import Protocol

import trio

from harness.devices.mock import MockDevice

TARGETS = ("mock", "sim", "board")


class Target(Protocol):
    name: str
    capabilities: frozenset[str]
    """What it can do beyond talking: "supply" (follow the profile), "reset", "brownout",
    "virtual_time" (run under a MockClock)."""
    truth: MockDevice | None
    """The device itself when the harness can look inside it (the mock), else None."""

    async def start(self, nursery: trio.Nursery, origin: float) -> trio.abc.Stream:
        """Start the device (scenario time 0 is `origin`) and return the stream to it."""
        ...

    def reset(self) -> None:
        """Reset the MCU."""
        ...

    def describe(self) -> str:
        """One line: what the run talks to."""
        ...
