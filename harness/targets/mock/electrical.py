"""The mock's electrical model: what an INA219 on the scenario's rail reads over an interval.

Readings come every `Ina219.reading_period(avg)` seconds. One call reports all the readings in
(t0, t1] at once, from the profile's exact means and extremes plus seeded noise, quantised as
the INA219 does, so a 20 ms dip inside a 1 s report still shows in vmin.
"""

from __future__ import annotations

import math
import random

from harness.link import Readings
from harness.link import fields as f
from harness.scenario.model import DeviceSpec
from harness.scenario.profile import Profile
from harness.targets.mock.ina219 import Ina219


class Electrical:
    def __init__(self, profile: Profile, spec: DeviceSpec, seed: int | str) -> None:
        self.profile = profile
        self.spec = spec
        self.sensor = Ina219(shunt_ohms=spec.shunt)
        self._rng = random.Random(f"{seed}/electrical")

    def count(self, t0: float, t1: float, avg: int) -> int:
        """Readings completed in (t0, t1] (readings are phased to t = 0)."""
        p = Ina219.reading_period(avg)
        return max(0, math.floor(t1 / p + 1e-9) - math.floor(t0 / p + 1e-9))

    def next_reading(self, t: float, avg: int) -> float:
        p = Ina219.reading_period(avg)
        return (math.floor(t / p + 1e-9) + 1) * p

    def readings(self, t0: float, t1: float, avg: int) -> Readings | None:
        """The readings in (t0, t1], aggregated; None if no reading completed."""
        n = self.count(t0, t1, avg)
        if n == 0:
            return None
        span = self.profile.span(t0, t1)
        rng = self._rng
        sv = self.spec.noise_v / math.sqrt(avg)
        sa = self.spec.noise_a / math.sqrt(avg)
        spread = math.sqrt(2 * math.log(n)) if n > 1 else 0.0
        q = self.sensor.quantize
        vmin = q(span.vmin - sv * spread * abs(rng.gauss(1, 0.1)), span.a).volts
        vmax = q(span.vmax + sv * spread * abs(rng.gauss(1, 0.1)), span.a).volts
        top = q(span.vmax, span.amax + sa * spread * abs(rng.gauss(1, 0.1)))
        bottom = q(span.vmax, span.amin)
        v = min(max(span.v + rng.gauss(0, sv / math.sqrt(n)), vmin), vmax)
        a = min(span.a + rng.gauss(0, sa / math.sqrt(n)), top.amps)
        w = span.w + v * a - span.v * span.a
        lsb = self.sensor.power_lsb
        return Readings(
            n=n,
            v=v,
            a=a,
            w=min(max(w, 0.0), f.WATTS.hi),
            vmin=vmin,
            vmax=vmax,
            amax=top.amps,
            wmax=min(round(span.wmax / lsb) * lsb, f.WATTS.hi),
            fault=f.STATUS_OVF if top.overflow or bottom.overflow else None,
        )

    def powered(self, t: float) -> bool:
        """With a shared rail the MCU runs only while the rail is at or above brownout volts."""
        return not self.spec.shared_rail or self.profile.at(t)[0] >= self.spec.brownout
