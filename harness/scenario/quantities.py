"""Physical values as scenario files write them: "3.2 V", "250 mA", "4.5mWh", "12 J", a number
with an SI prefix (n, µ or u, m, k, M) and a unit, or a bare number in the dimension's base unit
(V, A, W, J, C). Energy may be written in joules or watt-hours, charge in coulombs or
amp-hours; both are held in joules and coulombs."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    """What a value of it is called: "a voltage"."""
    base: str
    """The base unit a bare number is in."""
    units: str
    """How its units are named in a message: "volts"."""
    shown: str
    """The unit values are printed in (with a prefix that suits their size)."""


VOLTAGE: Final = Dimension("a voltage", "V", "volts", "V")
CURRENT: Final = Dimension("a current", "A", "amps", "A")
POWER: Final = Dimension("a power", "W", "watts", "W")
ENERGY: Final = Dimension("an energy", "J", "joules or watt-hours", "Wh")
CHARGE: Final = Dimension("a charge", "C", "coulombs or amp-hours", "Ah")
TIME: Final = Dimension("a time", "s", "seconds", "s")
COUNT: Final = Dimension("a count", "", "a whole number", "")
NUMBER: Final = Dimension("a plain number", "", "a plain number", "")
"""What a log line's capture is when its limits are written without a unit."""

_UNITS: Final = {
    # unit symbol: (dimension, its size in the dimension's base unit); longest symbols first
    "Wh": (ENERGY, 3600.0),
    "Ah": (CHARGE, 3600.0),
    "V": (VOLTAGE, 1.0),
    "A": (CURRENT, 1.0),
    "W": (POWER, 1.0),
    "J": (ENERGY, 1.0),
    "C": (CHARGE, 1.0),
    "s": (TIME, 1.0),
}
_PREFIX: Final = {
    "": 1.0,
    "n": 1e-9,
    "µ": 1e-6,
    "μ": 1e-6,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
}
_QUANTITY: Final = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")
_SHOWN_PREFIXES: Final = (("M", 1e6), ("k", 1e3), ("", 1.0), ("m", 1e-3), ("µ", 1e-6), ("n", 1e-9))


def parse(text: str) -> tuple[float, Dimension | None]:
    """The value in its dimension's base unit, and the dimension (None: a bare number, written
    as text). Raises ValueError naming what is wrong."""
    m = _QUANTITY.match(text)
    if m is None:
        raise ValueError(f'expected a number with a unit, e.g. "3.2 V" or "250 mA", got "{text}"')
    number, unit = float(m.group(1)), m.group(2)
    if not unit:
        return number, None
    for symbol, (dim, size) in _UNITS.items():
        if unit.endswith(symbol) and unit[: -len(symbol)] in _PREFIX:
            return number * _PREFIX[unit[: -len(symbol)]] * size, dim
    raise ValueError(
        f'"{text}": unknown unit "{unit}" (units: V, A, W, Wh, J, Ah, C with a prefix n, µ or u, '
        "m, k)"
    )


def format_value(value: float, dim: Dimension) -> str:
    """A value held in base units, printed in the dimension's shown unit with a prefix that
    keeps its integer part short: 3.2 V, 250 mA, 3.4722 mWh."""
    if dim in (COUNT, NUMBER):
        return f"{value:g}"
    if dim is TIME:
        return f"{value:.4g} s"
    x = value / 3600.0 if dim in (ENERGY, CHARGE) else value
    size = abs(x)
    for prefix, scale in _SHOWN_PREFIXES:
        if size >= scale * 0.9995 or scale == 1e-9:
            if size == 0:
                prefix, scale = "", 1.0
            return f"{_digits(x / scale)} {prefix}{dim.shown}"
    raise AssertionError(value)  # the loop always returns


def _digits(x: float) -> str:
    """Five significant digits, trailing zeros dropped."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:.5g}"
