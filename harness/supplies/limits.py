"""Safety limits of a bench, and the check that a scenario's profile stays within them before
the output goes on.

The supply's current limit is `max_amps`: on a bench the profile's amps are what the load is
expected to draw, and the current limit is what protects it. Without a bench file the limits
are the profile's own maxima, so every profile passes and the current limit is the largest
current the profile expects; `Limits.describe()` says which it is.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from harness.errors import UserError
from harness.scenario.profile import Profile
from harness.scenario.units import format_duration

OWN = "the profile's own maxima (no bench limits)"


@dataclass(frozen=True, slots=True)
class Limits:
    max_volts: float
    max_amps: float
    max_slew: float | None = None
    """V/s; None: any rate of change."""
    safe_volts: float | None = None
    """What the output is set to at the end instead of being switched off; None: off."""
    source: str = "the bench's"
    """How a message names the limits: "the bench's", or OWN."""

    def describe(self) -> str:
        slew = f", max_slew {self.max_slew:g} V/s" if self.max_slew is not None else ""
        end = (
            f"; at the end the output stays on at {self.safe_volts:g} V"
            if self.safe_volts is not None
            else "; at the end the output goes off"
        )
        whose = OWN if self.source == OWN else "from the bench file"
        return f"limits {whose}: max_volts {self.max_volts:g} V, max_amps {self.max_amps:g} A{slew}{end}"


def profile_limits(profile: Profile) -> Limits:
    """The limits of a bench without a bench file: the profile's own maxima."""
    return Limits(
        max_volts=max(p.volts for p in profile.points),
        max_amps=max(abs(p.amps) for p in profile.points),
        source=OWN,
    )


def _v(volts: float) -> str:
    return f"{volts:g} V"


def check_profile(profile: Profile, limits: Limits, where: str = "") -> UserError | None:
    """None if the profile stays within the limits, else the error to raise, naming the first
    point (numbered from 1, as in the scenario file) that goes beyond one and the limit, e.g.
    `supply[3] at 8s: 6.5 V is above the bench's max_volts 5.5 V`. `where` (the scenario
    file's name) starts the line when given."""
    prefix = f"{where}: " if where else ""
    whose = "the bench's" if limits.source != OWN else "the profile's own"

    def refuse(number: int, at: float, what: str) -> UserError:
        return UserError(f"{prefix}supply[{number}] at {format_duration(at)}: {what}")

    points = profile.points
    for number, p in enumerate(points, 1):
        if p.volts > limits.max_volts + 1e-9:
            return refuse(
                number, p.at, f"{_v(p.volts)} is above {whose} max_volts {_v(limits.max_volts)}"
            )
        if abs(p.amps) > limits.max_amps + 1e-9:
            return refuse(
                number,
                p.at,
                f"{abs(p.amps):g} A is above {whose} max_amps {limits.max_amps:g} A (the "
                "supply's current limit)",
            )
    if limits.max_slew is None:
        return None
    for number, (p0, p1) in enumerate(itertools.pairwise(points), 2):
        dv = abs(p1.volts - p0.volts)
        if dv == 0:
            continue
        dt = p1.at - p0.at
        least = dv / limits.max_slew
        if dt <= 0:
            return refuse(
                number,
                p1.at,
                f"an instant step from {_v(p0.volts)} to {_v(p1.volts)} is faster than {whose} "
                f"max_slew {limits.max_slew:g} V/s (ramp it over at least {format_duration(least)})",
            )
        if dv / dt > limits.max_slew + 1e-9:
            return refuse(
                number,
                p1.at,
                f"the ramp from {_v(p0.volts)} to {_v(p1.volts)} in {format_duration(dt)} "
                f"({dv / dt:g} V/s) is faster than {whose} max_slew {limits.max_slew:g} V/s "
                f"(give it at least {format_duration(least)})",
            )
    return None
