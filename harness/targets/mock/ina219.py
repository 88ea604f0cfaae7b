"""The INA219's arithmetic, as TI's datasheet (SBOS448) defines it, for the mock's readings.

Defaults match the firmware: 0.1 ohm shunt, PGA /8 (+-320 mV), 32 V bus range, current LSB
100 uA (calibration 4096), power LSB 20 x current LSB = 2 mW.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

BUS_LSB: Final = 0.004
SHUNT_LSB: Final = 10e-6
SHUNT_RANGE: Final = 0.32
BUS_MAX_CODE: Final = 0x1FFF
CONVERSION_S: Final = {
    1: 532e-6,
    2: 1.06e-3,
    4: 2.13e-3,
    8: 4.26e-3,
    16: 8.51e-3,
    32: 17.02e-3,
    64: 34.05e-3,
    128: 68.10e-3,
}
"""Conversion time of one ADC result at 12 bits for each averaging count (datasheet table 5)."""
READY_LOG: Final = "# ina219: ready at 0x40, calibration 4096"
"""The log line the firmware prints when the sensor answers at boot (firmware/src/main.cpp's
kLogReady; a test holds the two the same)."""


@dataclass(frozen=True, slots=True)
class Quantized:
    volts: float
    amps: float
    watts: float
    overflow: bool


@dataclass(frozen=True, slots=True)
class Ina219:
    shunt_ohms: float = 0.1
    current_lsb: float = 0.0001

    @property
    def calibration(self) -> int:
        return math.trunc(0.04096 / (self.current_lsb * self.shunt_ohms))

    @property
    def power_lsb(self) -> float:
        return 20 * self.current_lsb

    @staticmethod
    def reading_period(avg: int) -> float:
        """Seconds between readings in continuous shunt-and-bus mode: two conversions."""
        return 2 * CONVERSION_S[avg]

    def registers(self, volts: float, amps: float) -> tuple[int, int, int, int, bool]:
        """(bus code, shunt, current, power registers, overflow) for a rail state."""
        bus = min(max(round(volts / BUS_LSB), 0), BUS_MAX_CODE)
        shunt_v = amps * self.shunt_ohms
        overflow = abs(shunt_v) > SHUNT_RANGE
        limit = round(SHUNT_RANGE / SHUNT_LSB)
        shunt = min(max(round(shunt_v / SHUNT_LSB), -limit), limit)
        current = math.trunc(shunt * self.calibration / 4096)
        power = math.trunc(abs(current) * bus / 5000)
        if power > 0xFFFF:
            overflow, power = True, 0xFFFF
        return bus, shunt, current, power, overflow

    def quantize(self, volts: float, amps: float) -> Quantized:
        bus, _, current, power, overflow = self.registers(volts, amps)
        return Quantized(
            bus * BUS_LSB, current * self.current_lsb, power * self.power_lsb, overflow
        )
