"""The SCPI dialects of bench supplies, as data: one table entry per family.

A family differs from another only in what is written here: the command templates, the
terminators, how a setting is acknowledged, how a channel is named, and the `*IDN?` patterns
that pick the family. `harness.supplies.scpi` has one code path for all of them, so a new
family is one more entry in `DIALECTS` (docs/bench.md shows how).

Templates are `str.format` strings with `{ch}` (the channel, 1 unless the user chose one),
`{volts}`, `{amps}` and `{state}` (the dialect's word for on or off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import UserError
from harness.scenario.reader import suggest


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    title: str
    manufacturer: str
    """A regular expression searched (ignoring case) in the first field of `*IDN?`."""
    model: str
    """A regular expression searched (ignoring case) in the second field of `*IDN?`."""
    set_volts: str
    set_amps: str
    output: str
    measure_volts: str
    measure_amps: str
    select: str | None
    """The command that makes `{ch}` the channel later commands address; None where every
    command names its channel itself. Sent once, and only when the user chose a channel."""
    opc: bool
    """A setting is acknowledged by `*OPC?` (which answers 1 once the command is done);
    without it, by the error query (which answers once the command has been parsed)."""
    on: str = "ON"
    off: str = "OFF"
    error_query: str = "SYST:ERR?"
    no_error: str = r"^\s*[+-]?0\b"
    """What the error query answers when the queue is empty: an error number of 0."""
    write_termination: str = "\n"
    read_termination: str = "\n"
    serial_setup: tuple[str, ...] = ()
    """Commands sent once after `*IDN?` when the resource is a serial port (ASRL)."""

    def matches(self, idn: str) -> bool:
        fields = [f.strip() for f in idn.split(",")]
        maker = fields[0] if fields else ""
        model = fields[1] if len(fields) > 1 else ""
        return bool(
            re.search(self.manufacturer, maker, re.IGNORECASE)
            and re.search(self.model, model, re.IGNORECASE)
        )


GENERIC = Dialect(
    name="scpi",
    title="generic SCPI-1999 supply",
    manufacturer=r"",
    model=r"",
    set_volts="SOUR:VOLT {volts:.3f}",
    set_amps="SOUR:CURR {amps:.3f}",
    output="OUTP {state}",
    measure_volts="MEAS:VOLT?",
    measure_amps="MEAS:CURR?",
    select="INST:NSEL {ch}",
    opc=True,
)

DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            name="keysight",
            title="Keysight/Agilent E36xx",
            manufacturer=r"^(keysight|agilent|hewlett-packard)",
            model=r"^E36\d\d",
            set_volts="VOLT {volts:.3f}",
            set_amps="CURR {amps:.3f}",
            output="OUTP {state}",
            measure_volts="MEAS:VOLT?",
            measure_amps="MEAS:CURR?",
            select="INST:NSEL {ch}",
            opc=True,
            # Over RS-232 an E36xx takes commands only in remote mode.
            serial_setup=("SYST:REM",),
        ),
        Dialect(
            name="rigol",
            title="Rigol DP800",
            manufacturer=r"^rigol",
            model=r"^DP8\d\d",
            set_volts=":SOUR{ch}:VOLT {volts:.3f}",
            set_amps=":SOUR{ch}:CURR {amps:.3f}",
            output=":OUTP CH{ch},{state}",
            measure_volts=":MEAS:VOLT? CH{ch}",
            measure_amps=":MEAS:CURR? CH{ch}",
            select=None,
            opc=True,
        ),
        Dialect(
            name="siglent",
            title="Siglent SPD",
            manufacturer=r"^siglent",
            model=r"^SPD",
            set_volts="CH{ch}:VOLT {volts:.3f}",
            set_amps="CH{ch}:CURR {amps:.3f}",
            output="OUTP CH{ch},{state}",
            measure_volts="MEAS:VOLT? CH{ch}",
            measure_amps="MEAS:CURR? CH{ch}",
            select=None,
            # The SPD series has no *OPC?; its error queue answers once a command is parsed.
            opc=False,
        ),
        GENERIC,
    )
}
"""Tried in this order against `*IDN?`; the generic dialect matches any supply, so it is last."""


def dialect_for(idn: str) -> Dialect:
    """The first dialect whose patterns match the supply's `*IDN?` answer."""
    return next(d for d in DIALECTS.values() if d.matches(idn))


def dialect_named(name: str, where: str = "dialect") -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise UserError(
            f'{where}: unknown SCPI dialect "{name}"{suggest(name, DIALECTS)}; '
            f"choose one of {', '.join(DIALECTS)}"
        ) from None
