"""The command set of protocol v1: arguments, ranges, error codes and the settings they change.

Both ends use this table: the device to answer a command, the host (and the scenario loader)
to refuse a bad command before it is sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from harness.link import fields as f

# Error codes a device puts in `{"nack":seq,"err":code}`. A line it cannot decode at all gets
# `{"nack":-1,"err":<frame error kind>}` (see harness.link.frame.ERROR_KINDS).
ERR_UNKNOWN: Final = "unknown"
"""No such command."""
ERR_ARG: Final = "arg"
"""A missing, unexpected or wrongly typed argument."""
ERR_RANGE: Final = "range"
"""An argument outside its range."""
ERR_BOOT: Final = "boot"
"""The command names another boot of the device: it was meant for the firmware before a reset."""
ERR_STALE: Final = "stale"
"""The seq is older than the last command executed: a late copy, not executed again."""
COMMAND_ERRORS: Final = (ERR_UNKNOWN, ERR_ARG, ERR_RANGE, ERR_BOOT, ERR_STALE)


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument: an integer in lo..hi, an integer among `choices`, or a quantity >= 0."""

    lo: int = 0
    hi: int = 0
    choices: tuple[int, ...] = ()
    quantity: f.Quantity | None = None

    def check(self, value: Any) -> str | None:
        """The error code for a value, or None if it is good."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return ERR_ARG
        if self.quantity is not None:
            q = self.quantity
            return None if 0 <= value <= q.hi else ERR_RANGE
        if not isinstance(value, int):
            return ERR_ARG
        if self.choices:
            return None if value in self.choices else ERR_RANGE
        return None if self.lo <= value <= self.hi else ERR_RANGE


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    args: Mapping[str, Arg]
    required: bool
    """True: every argument is required. False: any non-empty subset."""
    summary: str


COMMANDS: Final[Mapping[str, CommandSpec]] = {
    spec.name: spec
    for spec in (
        CommandSpec("hello", {}, True, "answer with a hello frame (sync point for a new host)"),
        CommandSpec("ping", {}, True, "answer ok"),
        CommandSpec(
            "set_interval",
            {f.VALUE: Arg(lo=f.INTERVAL_MS[0], hi=f.INTERVAL_MS[1])},
            True,
            "report interval in ms",
        ),
        CommandSpec(
            "set_threshold",
            {key: Arg(quantity=q) for key, q in f.THRESHOLD_OF.items()},
            False,
            "alert thresholds: uv (V), oc (A), op (W); 0 turns one off",
        ),
        CommandSpec(
            "set_avg",
            {f.VALUE: Arg(choices=f.AVERAGING)},
            True,
            "INA219 averaging: readings per conversion",
        ),
    )
}


def check(name: str, args: Mapping[str, Any]) -> str | None:
    """The error code a device answers for this command, or None if it executes.
    Checked in order: name, argument names, types, ranges."""
    spec = COMMANDS.get(name)
    if spec is None:
        return ERR_UNKNOWN
    if not set(args) <= set(spec.args):
        return ERR_ARG
    if spec.required and set(args) != set(spec.args):
        return ERR_ARG
    if not spec.required and not args:
        return ERR_ARG
    errors = [spec.args[key].check(value) for key, value in args.items()]
    if ERR_ARG in errors:
        return ERR_ARG
    if ERR_RANGE in errors:
        return ERR_RANGE
    return None


@dataclass(frozen=True, slots=True)
class Settings:
    """What commands change on a device. Thresholds of 0 are off."""

    interval_ms: int = f.DEFAULT_INTERVAL_MS
    uv: float = 0.0
    oc: float = 0.0
    op: float = 0.0
    avg: int = f.DEFAULT_AVG

    def status_of(self, v: float, a: float, w: float) -> str:
        """The status one reading earns against the thresholds (most severe wins)."""
        if self.oc and a > self.oc:
            return f.STATUS_OC
        if self.op and w > self.op:
            return f.STATUS_OP
        if self.uv and v < self.uv:
            return f.STATUS_UV
        return f.STATUS_OK


def truncate(value: float, q: f.Quantity) -> float:
    """A non-negative value cut to the quantity's resolution."""
    scale = 10**q.decimals
    return math.floor(value * scale + 1e-6) / scale


def apply(settings: Settings, name: str, args: Mapping[str, Any]) -> Settings:
    """Settings after a command that `check` accepted. Thresholds keep the wire resolution:
    digits finer than it are dropped, as a device parsing fixed-point decimals does."""
    if name == "set_interval":
        return replace(settings, interval_ms=int(args[f.VALUE]))
    if name == "set_avg":
        return replace(settings, avg=int(args[f.VALUE]))
    if name == "set_threshold":
        return replace(settings, **{k: truncate(v, f.THRESHOLD_OF[k]) for k, v in args.items()})
    return settings
