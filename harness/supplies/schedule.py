"""The settings that follow a profile: one at each point, and steps along each ramp.

Shared by `follow` (which makes them) and the manual supply's announcements (which tell a
person ahead of time), so both always agree on what is set when.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from harness.scenario.profile import Profile

EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Planned:
    """A setting of the output's volts `due` seconds after the profile's origin. `point` is
    the profile point it reaches (numbered from 1, as in the scenario file), None for a step
    along a ramp."""

    due: float
    volts: float
    point: int | None


def plan(profile: Profile, rate: float, start: float = 0.0) -> list[Planned]:
    """The settings from `start` on: the volts at `start`, every point where the volts change
    (after a step, the value it steps to), and along a ramp one setting every 1/`rate` s from
    the ramp's start (none with `rate` 0). A setting equal to the one before is left out: it
    would change nothing."""
    out: list[Planned] = []

    def add(entry: Planned) -> None:
        while out and out[-1].due >= entry.due - EPSILON:
            out.pop()  # two settings at one time: the later one is what holds
        if not out or out[-1].volts != entry.volts:
            out.append(entry)

    points = profile.points
    at_start = [n for n, p in enumerate(points, 1) if abs(p.at - start) <= EPSILON]
    add(Planned(start, profile.at(start)[0], at_start[-1] if at_start else None))
    for number, (p0, p1) in enumerate(itertools.pairwise(points), 2):
        if rate > 0 and p1.at > p0.at and p1.volts != p0.volts:
            for k in itertools.count(1):
                t = p0.at + k / rate
                if t >= p1.at - EPSILON:
                    break
                if t > start + EPSILON:
                    add(Planned(t, profile.at(t)[0], None))
        if p1.at > start + EPSILON:
            add(Planned(p1.at, p1.volts, number))
    return out
