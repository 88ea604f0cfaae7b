"""Which device a command line flag's value is for: `--serial NAME=PATH` and `--supply
NAME=DRIVER:RESOURCE` name one of the scenario's devices; a plain value is the only device's."""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import UserError
from harness.scenario.model import NAME_PATTERN


def split_named(
    values: Sequence[str] | None, names: Sequence[str] | None, flag: str, what: str
) -> tuple[str | None, dict[str, str]]:
    """The plain value (for a scenario's only device) and the named ones, by device. `names`:
    the scenario's devices (None: any name, as `harness monitor` takes them from the flags)."""
    plain: str | None = None
    named: dict[str, str] = {}
    for value in values or ():
        name, sep, rest = value.partition("=")
        if sep and NAME_PATTERN.fullmatch(name):
            if names is not None and name not in names:
                raise UserError(
                    f"{flag} {value}: no device is called {name} "
                    f"(the scenario's: {', '.join(names)})"
                )
            if name in named:
                raise UserError(f"{flag} {value}: {name} has {flag} {named[name]} already")
            if not rest:
                raise UserError(f"{flag} {value}: give the {what} after {name}=")
            named[name] = rest
        elif plain is not None or named:
            raise UserError(
                f"{flag} {value}: with more than one {flag}, name the device of each "
                f"({flag} NAME={what})"
            )
        else:
            plain = value
    if plain is not None and named:
        raise UserError(
            f"{flag} {plain}: with more than one {flag}, name the device of each "
            f"({flag} NAME={what})"
        )
    if plain is not None and names is not None and len(names) > 1:
        raise UserError(
            f"{flag} {plain}: the scenario has {len(names)} devices; name the one it is for: "
            f"{flag} NAME={what} ({', '.join(names)})"
        )
    return plain, named
