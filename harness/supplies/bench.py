"""The bench file: which supply feeds the rail and the limits it must keep.

    [supply]
    driver = "scpi"                               # scpi | korad | manual
    resource = "TCPIP::192.168.1.50::5025::SOCKET"
    channel = 1                                   # optional
    dialect = "rigol"                             # optional, scpi only: else chosen by *IDN?
    timeout = "2s"                                # optional: how long to wait for an answer

    [limits]                                      # optional: without it, the profile's own
    max_volts = 5.5
    max_amps = 0.5                                # also the supply's current limit
    max_slew = 10                                 # optional, V/s
    safe_volts = 3.3                              # optional: the end state instead of off

Every problem is one line naming the file, the line, the key and what is wrong, worded as the
scenario loader words its own (`bench.toml:7: limits.max_volts: expected a number, got "5V"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.scenario.reader import Path_, Reader, read_text, read_toml
from harness.supplies.dialects import DIALECTS
from harness.supplies.limits import Limits
from harness.supplies.spec import DRIVERS, SupplySpec, driver_problem

SECTIONS = ("supply", "limits")
SUPPLY_KEYS = ("driver", "resource", "channel", "dialect", "timeout")
LIMIT_KEYS = ("max_volts", "max_amps", "max_slew", "safe_volts")
MAX_VOLTS = 1000.0
MAX_AMPS = 100.0
MAX_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Bench:
    path: Path
    supply: SupplySpec
    limits: Limits | None
    """None: no [limits]; the run then takes the profile's own (limits.profile_limits)."""


def _supply(r: Reader, raw: Any) -> SupplySpec:
    t = r.table(raw, ("supply",), SUPPLY_KEYS)
    if "driver" not in t:
        raise r.fail(("supply",), f'missing "driver" ({", ".join(DRIVERS)})')
    driver = r.string(t["driver"], ("supply", "driver"), DRIVERS)
    resource = r.string(t.get("resource", ""), ("supply", "resource")).strip()
    if problem := driver_problem(driver, resource):
        raise r.fail(("supply", "resource" if "resource" in t else "driver"), problem)
    channel = r.integer(t["channel"], ("supply", "channel"), 1, 99) if "channel" in t else None
    if channel is not None and driver == "manual":
        raise r.fail(("supply", "channel"), "a manual supply has no channel to choose")
    dialect = None
    if "dialect" in t:
        if driver != "scpi":
            raise r.fail(
                ("supply", "dialect"), f"only a scpi supply has a dialect (this is {driver})"
            )
        dialect = r.string(t["dialect"], ("supply", "dialect"), DIALECTS)
    timeout = None
    if "timeout" in t:
        timeout = r.duration(t["timeout"], ("supply", "timeout"))
        if not 0 < timeout <= MAX_TIMEOUT:
            raise r.fail(("supply", "timeout"), f"{t['timeout']} is outside 1ms..{MAX_TIMEOUT:g}s")
    return SupplySpec(driver, resource, channel, dialect, timeout)


def _positive(r: Reader, value: Any, key: str, hi: float, unit: str) -> float:
    path: Path_ = ("limits", key)
    number = r.number(value, path, 0.0, hi, unit)
    if number <= 0:
        raise r.fail(path, f"must be more than 0{unit}")
    return number


def _limits(r: Reader, raw: Any) -> Limits:
    t = r.table(raw, ("limits",), LIMIT_KEYS)
    for key in ("max_volts", "max_amps"):
        if key not in t:
            raise r.fail(
                ("limits",), f'missing "{key}" (a bench\'s limits need max_volts and max_amps)'
            )
    max_volts = _positive(r, t["max_volts"], "max_volts", MAX_VOLTS, " V")
    max_amps = _positive(r, t["max_amps"], "max_amps", MAX_AMPS, " A")
    max_slew = _positive(r, t["max_slew"], "max_slew", 1e6, " V/s") if "max_slew" in t else None
    safe_volts = None
    if "safe_volts" in t:
        safe_volts = r.number(t["safe_volts"], ("limits", "safe_volts"), 0.0, MAX_VOLTS, " V")
        if safe_volts > max_volts:
            raise r.fail(
                ("limits", "safe_volts"),
                f"{safe_volts:g} V is above max_volts {max_volts:g} V",
            )
    return Limits(max_volts, max_amps, max_slew, safe_volts)


def parse_bench(text: str, path: Path) -> Bench:
    r, data = read_toml(text, path.name, SECTIONS, "supply", "its driver and resource at least")
    supply = _supply(r, data["supply"])
    limits = _limits(r, data["limits"]) if "limits" in data else None
    return Bench(path, supply, limits)


def load_bench(path: Path | str) -> Bench:
    path = Path(path)
    text = read_text(path, "bench file")
    return parse_bench(text, path)
