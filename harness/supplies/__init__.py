"""Bench supplies: what feeds the monitored rail on a real bench, driven along a scenario's
profile.

- `base`: the `Supply` protocol, `Readback`, `SupplyError`
- `scpi` (any SCPI supply through PyVISA) with `dialects` (the families, as data),
  `korad` (KA3005P-family serial), `manual` (set by hand, each setting announced)
- `spec`: `DRIVER:RESOURCE` names and the driver each makes; `bench`: the bench file
- `limits`: safety limits and the check of a profile against them
- `schedule` and `follow`: the settings a profile needs, and making them in trio time
- `emulated` and `emulators`: an emulated supply (SCPI on loopback TCP, Korad on a pty)
"""

from harness.supplies.base import Readback, Supply, SupplyError
from harness.supplies.bench import Bench, load_bench, parse_bench
from harness.supplies.follow import FollowReport, Setting, follow
from harness.supplies.limits import Limits, check_profile, profile_limits
from harness.supplies.spec import SupplySpec, make_supply, open_supply, parse_supply

__all__ = [
    "Bench",
    "FollowReport",
    "Limits",
    "Readback",
    "Setting",
    "Supply",
    "SupplyError",
    "SupplySpec",
    "check_profile",
    "follow",
    "load_bench",
    "make_supply",
    "open_supply",
    "parse_bench",
    "parse_supply",
    "profile_limits",
]
