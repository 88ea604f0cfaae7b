"""No programmable supply: a person sets it by hand, told what to do and when.

Each setting is announced to a callback ("set the supply to 3.00 V now") the moment `follow`
makes it, and counts as taken then: the recorded time is the announcement's, not when the
knob was turned. There is no readback (`measure` returns None). `upcoming` lists the
announcements a profile will make, so the console or the viewer can count down to each.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import trio

from harness.scenario.profile import Profile
from harness.supplies.base import Readback, SupplyError
from harness.supplies.schedule import plan

RATE = 1.0
"""Settings a second along a ramp: one turn of the knob a second is what a person can follow."""
LEAD = 3.0
"""Seconds of countdown before a setting."""


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def volts_text(volts: float) -> str:
    return f"set the supply to {volts:.2f} V"


class ManualSupply:
    """`say` gets each announcement as one line (default: standard error)."""

    max_rate = RATE

    def __init__(self, say: Callable[[str], None] | None = None, name: str = "manual") -> None:
        self.name = name
        self._say = say or _to_stderr
        self._closed = False

    def describe(self) -> str:
        return f"{self.name}: applied by hand (each setting announced when due; no readback)"

    def _announce(self, text: str) -> None:
        if self._closed:
            raise SupplyError(f"{self.name}: used after it was closed")
        self._say(f"{text} now")

    async def identify(self) -> str:
        await trio.lowlevel.checkpoint()
        return "manual supply (set by hand)"

    async def set_volts(self, volts: float) -> None:
        await trio.lowlevel.checkpoint()
        self._announce(volts_text(volts))

    async def set_current_limit(self, amps: float) -> None:
        await trio.lowlevel.checkpoint()
        self._announce(f"set the current limit to {amps:.3f} A")

    async def output(self, on: bool) -> None:
        await trio.lowlevel.checkpoint()
        self._announce(f"switch the output {'on' if on else 'off'}")

    async def measure(self) -> Readback | None:
        await trio.lowlevel.checkpoint()
        return None

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
        self._closed = True


@dataclass(frozen=True, slots=True)
class Announcement:
    """A setting a person is to make at trio time `at`."""

    at: float
    volts: float
    point: int | None

    @property
    def text(self) -> str:
        return volts_text(self.volts)

    def countdown(self, now: float) -> str:
        """The line to show at `now`: "in 3s: set the supply to 3.00 V", then "... now"."""
        left = math.ceil(self.at - now - 1e-9)
        return f"in {left}s: {self.text}" if left > 0 else f"{self.text} now"


def upcoming(
    profile: Profile, origin: float, *, rate: float = RATE, start: float = 0.0
) -> Iterator[Announcement]:
    """The announcements `follow` will make for `profile` from `start` s on (the same plan),
    with `origin` the trio time of the profile's 0 s."""
    for p in plan(profile, rate, start):
        yield Announcement(origin + p.due, p.volts, p.point)


async def count_down(
    announcements: Iterable[Announcement], say: Callable[[str], None], *, lead: float = LEAD
) -> None:
    """Say "in Ns: ..." once a second during the `lead` before each announcement, as long as
    the one before it is past (a countdown never talks over the previous setting). The "now"
    comes from the supply itself when the setting is made."""
    previous = -math.inf
    for a in announcements:
        for left in range(math.ceil(lead), 0, -1):
            t = a.at - left
            if t <= previous or t < trio.current_time():
                continue
            await trio.sleep_until(t)
            say(a.countdown(t))
        previous = a.at
