"""The limits an expectation compares its measured value with, in the measure's dimension:
`below`/`above` (strict), `at_most`/`at_least` (inclusive), `between = [lo, hi]` (inclusive),
`value` (equal), and a `marginal` band: a value inside a limit by less than the band is
marginal, not a pass. Values are written with units ("3.2 V", "250 mA", "2 mWh") or as bare
numbers in the dimension's base unit; a unit of another dimension is refused in one line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.scenario import quantities
from harness.scenario.expect.states import FAIL, MARGINAL, PASS
from harness.scenario.quantities import COUNT, TIME, Dimension, format_value
from harness.scenario.reader import Path_, Reader, show

LIMIT_KEYS = ("below", "above", "between", "at_most", "at_least", "value")
BOUNDS = ("below", "above", "between", "at_most", "at_least")
"""The keys that bound a value from one side or both (a marginal band needs one)."""


@dataclass(frozen=True, slots=True)
class Limits:
    dim: Dimension
    lo: float | None = None
    lo_inclusive: bool = False
    hi: float | None = None
    hi_inclusive: bool = False
    equal: float | None = None
    marginal: float | None = None
    """Width of the band inside each bound where a value is marginal."""

    def judge(self, x: float) -> str:
        """pass, marginal or fail."""
        if self.equal is not None:
            return PASS if x == self.equal else FAIL
        if self.lo is not None and (x < self.lo or (x == self.lo and not self.lo_inclusive)):
            return FAIL
        if self.hi is not None and (x > self.hi or (x == self.hi and not self.hi_inclusive)):
            return FAIL
        band = self.marginal
        if band is not None and (
            (self.lo is not None and x - self.lo < band)
            or (self.hi is not None and self.hi - x < band)
        ):
            return MARGINAL
        return PASS

    def margin(self, x: float) -> float | None:
        """How far `x` is inside its nearest bound, in the base unit: positive inside the
        limits, negative outside (by how much it missed); None for `value` (equal or not)."""
        if self.equal is not None:
            return None
        inside = []
        if self.lo is not None:
            inside.append(x - self.lo)
        if self.hi is not None:
            inside.append(self.hi - x)
        return min(inside) if inside else None

    def show(self, x: float) -> str:
        return format_value(x, self.dim)

    def describe(self) -> str:
        """The limits as the verdict table, the record and the viewer print them."""
        if self.equal is not None:
            return f"= {self.show(self.equal)}"
        if self.lo is not None and self.hi is not None and self.lo_inclusive and self.hi_inclusive:
            text = f"in {self.show(self.lo)}..{self.show(self.hi)}"
        else:
            parts = []
            if self.hi is not None:
                parts.append(f"{'<=' if self.hi_inclusive else '<'} {self.show(self.hi)}")
            if self.lo is not None:
                parts.append(f"{'>=' if self.lo_inclusive else '>'} {self.show(self.lo)}")
            text = " and ".join(parts)
        if self.marginal is not None:
            text += f" (marginal within {self.show(self.marginal)})"
        return text


def read_value(r: Reader, value: Any, path: Path_, dim: Dimension | None, what: str) -> float:
    """One value of `dim` (None: whatever dimension it is written in, bare numbers taken as
    they are); `what` names the measure in the error, e.g. "v is volts"."""
    if dim is TIME:
        return r.duration(value, path)
    if dim is COUNT:
        return float(r.integer(value, path, 0, 10**12))
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise r.fail(path, f'expected a number or a value with a unit ("3.2 V"), got {show(value)}')
    if isinstance(value, str):
        x, written = r.convert(value, path, quantities.parse)
        if dim is not None and written is not None and written is not dim:
            raise r.fail(path, f'"{value}" is {written.name}, {what} is {dim.units}')
    else:
        x = float(value)
    if not -1e12 <= x <= 1e12:
        raise r.fail(path, f"{show(value)} is out of range")
    return x


def dimension_written(t: dict[str, Any], keys: Iterable[str]) -> Dimension | None:
    """The dimension the first value with a unit among `keys` is written in (None: no unit)."""
    for key in keys:
        values = t.get(key)
        for v in values if isinstance(values, list) else [values]:
            if isinstance(v, str):
                try:
                    _, dim = quantities.parse(v)
                except ValueError:
                    continue
                if dim is not None:
                    return dim
    return None


def read_limits(
    r: Reader,
    t: dict[str, Any],
    path: Path_,
    dim: Dimension,
    what: str,
    keys: tuple[str, ...] = ("below", "above", "between"),
) -> Limits:
    """The entry's limits among `keys` (and `marginal`, when the kind takes it)."""
    present = [k for k in keys if k in t]
    if not present:
        raise r.fail(path, "needs " + " or ".join(f'"{k}"' for k in keys))
    if "between" in present and len(present) > 1:
        raise r.fail((*path, "between"), "goes alone (it gives both bounds)")
    if "value" in present and len(present) > 1:
        raise r.fail((*path, "value"), "goes alone (it is the one value expected)")
    if "below" in present and "at_most" in present:
        raise r.fail((*path, "at_most"), 'one upper bound: "below" or "at_most"')
    if "above" in present and "at_least" in present:
        raise r.fail((*path, "at_least"), 'one lower bound: "above" or "at_least"')

    def one(key: str) -> float:
        return read_value(r, t[key], (*path, key), dim, what)

    lo = hi = equal = None
    lo_incl = hi_incl = False
    if "between" in present:
        pair = t["between"]
        if not isinstance(pair, list) or len(pair) != 2:
            raise r.fail(
                (*path, "between"),
                f'expected [low, high], e.g. ["4.75 V", "5.25 V"], got {show(pair)}',
            )
        lo, hi = (read_value(r, v, (*path, "between", i), dim, what) for i, v in enumerate(pair, 1))
        if hi < lo:
            raise r.fail((*path, "between"), "the high bound comes first; write [low, high]")
        lo_incl = hi_incl = True
    if "below" in present:
        hi = one("below")
    if "at_most" in present:
        hi, hi_incl = one("at_most"), True
    if "above" in present:
        lo = one("above")
    if "at_least" in present:
        lo, lo_incl = one("at_least"), True
    if "value" in present:
        equal = one("value")
    if lo is not None and hi is not None and hi <= lo and not (lo_incl and hi_incl and hi == lo):
        raise r.fail(path, "no value can be both above its lower and below its upper bound")
    marginal = None
    if "marginal" in t:
        kp = (*path, "marginal")
        if not any(k in present for k in BOUNDS):
            raise r.fail(
                kp, f"needs a bound to be inside of ({', '.join(k for k in keys if k in BOUNDS)})"
            )
        marginal = read_value(r, t["marginal"], kp, dim, what)
        if marginal <= 0:
            raise r.fail(kp, "a marginal band is wider than 0")
    return Limits(dim, lo, lo_incl, hi, hi_incl, equal, marginal)
