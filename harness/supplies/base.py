"""What every bench supply offers the harness: the `Supply` protocol, its readback, and the
error a supply raises.

A setting returns once the instrument has acknowledged it (an SCPI supply has answered the
`*OPC?` or `SYST:ERR?` that follows the command, a Korad has echoed the new value back), so
the trio time right after the call is when the setting took effect, to within one reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from harness.errors import UserError


class SupplyError(UserError):
    """The bench supply could not be reached, refused a setting or answered nonsense. One line
    naming the supply (its resource) and what to check."""


@dataclass(frozen=True, slots=True)
class Readback:
    """What the supply measures at its output terminals."""

    volts: float
    amps: float


@runtime_checkable
class Supply(Protocol):
    """A programmable (or hand-driven) supply feeding the monitored rail.

    Every method may be called from any trio task; a driver serialises its instrument's I/O
    itself. Calls after `aclose` raise SupplyError."""

    name: str
    """How the user named it, e.g. "scpi:TCPIP::192.168.1.50::5025::SOCKET"."""

    max_rate: float
    """The most settings a second it can take along a ramp; `follow` steps no faster."""

    def describe(self) -> str:
        """One line for the console and the run record: what it is and how it is driven."""
        ...

    async def identify(self) -> str:
        """The instrument's identity (its `*IDN?`), opening the connection if need be."""
        ...

    async def set_volts(self, volts: float) -> None: ...

    async def set_current_limit(self, amps: float) -> None: ...

    async def output(self, on: bool) -> None: ...

    async def measure(self) -> Readback | None:
        """The output's volts and amps now; None when the supply cannot be read back."""
        ...

    async def aclose(self) -> None:
        """Let go of the instrument (its output stays as last set)."""
        ...
