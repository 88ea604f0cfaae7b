"""An emulated bench supply, sans-IO: its output (set volts, current limit, on/off, a load,
constant-current mode) and the two command sets it answers, SCPI and Korad's.

`harness.supplies.emulators` serves these on a loopback TCP port and on a pty; the tests and
the virtual bench talk to them through the real drivers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Load = float | Callable[[float], float] | None
"""What the output feeds: a resistance in ohms, a function giving the amps drawn at a voltage
(it must not fall as the voltage rises), or None for nothing connected."""
OnOutput = Callable[[float, float, bool], None]
"""Called as on_output(volts, amps_limit, on) whenever the output's settings change."""


@dataclass(frozen=True, slots=True)
class Terminals:
    """What the output terminals carry now."""

    volts: float
    amps: float
    mode: str
    """"CV" (at the set volts), "CC" (the load wants more than the limit), or "off"."""


class EmulatedOutput:
    """The output of a single-channel supply. Settings beyond `max_volts` or `max_amps` are
    refused (the setters return False), as a real supply refuses them."""

    def __init__(
        self,
        *,
        load: Load = None,
        max_volts: float = 30.0,
        max_amps: float = 5.0,
        on_output: OnOutput | None = None,
    ) -> None:
        self.load = load
        self.max_volts = max_volts
        self.max_amps = max_amps
        self.on_output = on_output
        self.volts = 0.0
        self.amps_limit = 1.0
        self.on = False

    def _changed(self, before: tuple[float, float, bool]) -> None:
        if self.on_output is not None and before != (self.volts, self.amps_limit, self.on):
            self.on_output(self.volts, self.amps_limit, self.on)

    def _state(self) -> tuple[float, float, bool]:
        return (self.volts, self.amps_limit, self.on)

    def set_volts(self, volts: float) -> bool:
        if not 0 <= volts <= self.max_volts:
            return False
        before = self._state()
        self.volts = volts
        self._changed(before)
        return True

    def set_current_limit(self, amps: float) -> bool:
        if not 0 <= amps <= self.max_amps:
            return False
        before = self._state()
        self.amps_limit = amps
        self._changed(before)
        return True

    def set_output(self, on: bool) -> None:
        before = self._state()
        self.on = on
        self._changed(before)

    def reset(self) -> None:
        before = self._state()
        self.volts, self.amps_limit, self.on = 0.0, 1.0, False
        self._changed(before)

    def _draw(self, volts: float) -> float:
        if self.load is None:
            return 0.0
        if callable(self.load):
            return max(0.0, self.load(volts))
        return volts / self.load if self.load > 0 else float("inf")

    def terminals(self) -> Terminals:
        if not self.on:
            return Terminals(0.0, 0.0, "off")
        wanted = self._draw(self.volts)
        if wanted <= self.amps_limit:
            return Terminals(self.volts, wanted, "CV")
        # Constant current: the voltage falls to where the load draws the limit.
        lo, hi = 0.0, self.volts
        for _ in range(60):
            mid = (lo + hi) / 2
            if self._draw(mid) > self.amps_limit:
                hi = mid
            else:
                lo = mid
        return Terminals(lo, self.amps_limit, "CC")


# --- SCPI ---------------------------------------------------------------------------------


def _mnemonics(spec: str) -> re.Pattern[str]:
    """A header pattern from SCPI notation: `[SOURce:]VOLTage[:LEVel]` accepts SOUR:VOLT,
    source:voltage:level, VOLT... Each word in its short form (the capitals) or its long
    form, any case; bracketed parts optional; a leading colon allowed."""

    def word(m: re.Match[str]) -> str:
        text = m.group()
        short = "".join(c for c in text if not c.islower())
        return f"(?:{re.escape(text.upper())}|{re.escape(short.upper())})"

    pattern = re.sub(r"[*A-Za-z]+", word, spec.replace("?", r"\?"))
    pattern = pattern.replace("[", "(?:").replace("]", ")?")
    return re.compile(r":?" + pattern, re.IGNORECASE)


NO_ERROR = '+0,"No error"'
UNDEFINED_HEADER = '-113,"Undefined header"'
DATA_TYPE = '-104,"Data type error"'
OUT_OF_RANGE = '-222,"Data out of range"'
MISSING = '-109,"Missing parameter"'
SCPI_IDN = "powerhil,Emulated SCPI supply,0,1.0"


class ScpiInstrument:
    """Answers SCPI lines for one emulated output: `*IDN?`, `*RST`, `*OPC?`, `*CLS`,
    `SYST:ERR?`, `SYST:REM`, `[SOUR:]VOLT`, `[SOUR:]CURR` (and their queries), `OUTP ON|OFF|1|0`
    (and `OUTP?`), `MEAS:VOLT?`, `MEAS:CURR?`, `INST:NSEL 1` (and `INST:NSEL?`). Several
    commands may share a line, separated by `;`. A command it does not know, or a bad value,
    goes to the error queue as a real instrument's does."""

    def __init__(self, output: EmulatedOutput, idn: str = SCPI_IDN) -> None:
        self.output = output
        self.idn = idn
        self.errors: list[str] = []
        self.commands: list[str] = []
        """Every command received, in order (what a test reads as the wire's traffic)."""
        n = _mnemonics
        self._table: list[tuple[re.Pattern[str], Callable[[str], str | None]]] = [
            (n("*IDN?"), lambda arg: self.idn),
            (n("*RST"), self._reset),
            (n("*OPC?"), lambda arg: "1"),
            (n("*CLS"), self._clear),
            (
                n("SYSTem:ERRor[:NEXT]?"),
                lambda arg: self.errors.pop(0) if self.errors else NO_ERROR,
            ),
            (n("SYSTem:REMote"), lambda arg: None),
            (
                n("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]?"),
                lambda arg: _sci(self.output.volts),
            ),
            (n("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]"), self._volts),
            (
                n("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]?"),
                lambda arg: _sci(self.output.amps_limit),
            ),
            (n("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]"), self._amps),
            (n("OUTPut[:STATe]?"), lambda arg: "1" if self.output.on else "0"),
            (n("OUTPut[:STATe]"), self._switch),
            (n("MEASure[:SCALar]:VOLTage[:DC]?"), lambda arg: _sci(self.output.terminals().volts)),
            (n("MEASure[:SCALar]:CURRent[:DC]?"), lambda arg: _sci(self.output.terminals().amps)),
            (n("INSTrument:NSELect?"), lambda arg: "1"),
            (n("INSTrument:NSELect"), self._select),
        ]

    def handle(self, line: str) -> list[str]:
        """The replies to one line, in order."""
        replies: list[str] = []
        for command in line.split(";"):
            command = command.strip()
            if not command:
                continue
            self.commands.append(command)
            header, _, arg = command.partition(" ")
            for pattern, action in self._table:
                if pattern.fullmatch(header):
                    reply = action(arg.strip())
                    if reply is not None:
                        replies.append(reply)
                    break
            else:
                self.errors.append(UNDEFINED_HEADER)
        return replies

    def _number(self, arg: str) -> float | None:
        if not arg:
            self.errors.append(MISSING)
            return None
        try:
            return float(arg)
        except ValueError:
            self.errors.append(DATA_TYPE)
            return None

    def _volts(self, arg: str) -> None:
        value = self._number(arg)
        if value is not None and not self.output.set_volts(value):
            self.errors.append(OUT_OF_RANGE)

    def _amps(self, arg: str) -> None:
        value = self._number(arg)
        if value is not None and not self.output.set_current_limit(value):
            self.errors.append(OUT_OF_RANGE)

    def _switch(self, arg: str) -> None:
        word = arg.upper()
        if word in ("ON", "1"):
            self.output.set_output(True)
        elif word in ("OFF", "0"):
            self.output.set_output(False)
        else:
            self.errors.append(DATA_TYPE if word else MISSING)

    def _select(self, arg: str) -> None:
        value = self._number(arg)
        if value is not None and value != 1:
            self.errors.append(OUT_OF_RANGE)  # a single-channel supply

    def _reset(self, arg: str) -> None:
        self.output.reset()

    def _clear(self, arg: str) -> None:
        self.errors.clear()


def _sci(value: float) -> str:
    return f"{value:+.8E}"


# --- Korad --------------------------------------------------------------------------------

KORAD_IDN = "KORAD KA3005P V5.8 SN:00000001"
_KORAD = re.compile(
    rb"\*IDN\?|STATUS\?|[VI](?:SET|OUT)1\?|OUT[01]|(?P<set>[VI]SET1):(?P<value>\d+(?:\.\d*)?)"
)


class KoradInstrument:
    """Answers the KA3005P protocol for one emulated output. With no terminators, a command
    whose value ends the bytes received so far may not be complete yet: it is taken when the
    next command's first byte comes or when the line goes idle (`idle()`), as the real supply
    takes it after a pause. Bytes that make no command are dropped, as the supply ignores them."""

    def __init__(self, output: EmulatedOutput, idn: str = KORAD_IDN) -> None:
        self.output = output
        self.idn = idn
        self.commands: list[str] = []
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        """The replies to the commands completed by `data`."""
        self._buffer += data
        return self._parse(final=False)

    @property
    def pending(self) -> bool:
        """Bytes wait for the pause that completes them."""
        return bool(self._buffer)

    def idle(self) -> bytes:
        """The line has been quiet: what is buffered is complete."""
        return self._parse(final=True)

    def _parse(self, final: bool) -> bytes:
        out = b""
        while self._buffer:
            m = _KORAD.match(self._buffer)
            if m is None:
                if not final:
                    break  # a command still arriving, or garbage the pause will clear
                self._buffer = self._buffer[1:]
                continue
            if m.group("set") and m.end() == len(self._buffer) and not final:
                break  # more digits may be on their way
            out += self._run(m)
            self._buffer = self._buffer[m.end() :]
        return out

    def _run(self, m: re.Match[bytes]) -> bytes:
        command = m.group().decode("ascii")
        self.commands.append(command)
        o = self.output
        if m.group("set"):
            value = float(m.group("value"))
            if m.group("set") == b"VSET1":
                o.set_volts(round(value, 2))
            else:
                o.set_current_limit(round(value, 3))
            return b""
        if command == "*IDN?":
            return self.idn.encode("ascii")
        if command == "STATUS?":
            t = o.terminals()
            cv = 0x01 if t.mode != "CC" else 0x00
            return bytes([cv | (0x40 if o.on else 0x00)])
        if command in ("OUT0", "OUT1"):
            o.set_output(command == "OUT1")
            return b""
        values = {
            "VSET1?": f"{o.volts:05.2f}",
            "ISET1?": f"{o.amps_limit:.3f}",
            "VOUT1?": f"{o.terminals().volts:05.2f}",
            "IOUT1?": f"{o.terminals().amps:.3f}",
        }
        return values[command].encode("ascii")
