"""The emulated supply: its output (constant current when the load asks for more than the
limit, a callback on every change) and the SCPI and Korad command sets it answers."""

from __future__ import annotations

import socket

import pytest
import trio

from harness.supplies.emulated import EmulatedOutput, KoradInstrument, ScpiInstrument
from harness.supplies.emulators import serve_scpi


def test_constant_voltage_until_the_load_asks_for_more_than_the_limit() -> None:
    out = EmulatedOutput(load=10.0)
    out.set_current_limit(0.3)
    out.set_volts(2.0)
    assert out.terminals().mode == "off" and out.terminals().volts == 0.0
    out.set_output(True)
    t = out.terminals()
    assert (t.volts, t.amps, t.mode) == (2.0, 0.2, "CV")
    out.set_volts(5.0)
    t = out.terminals()
    assert (t.volts, t.amps, t.mode) == (pytest.approx(3.0), 0.3, "CC")


def test_a_load_given_as_a_function_of_the_volts() -> None:
    # A load drawing 20 mA plus 10 mA a volt: at 0.1 A it sits at 8 V.
    out = EmulatedOutput(load=lambda v: 0.02 + 0.01 * v)
    out.set_current_limit(0.1)
    out.set_volts(12.0)
    out.set_output(True)
    t = out.terminals()
    assert (t.volts, t.amps, t.mode) == (pytest.approx(8.0), 0.1, "CC")


def test_on_output_is_called_on_each_change_only() -> None:
    seen: list[tuple[float, float, bool]] = []
    out = EmulatedOutput(on_output=lambda v, a, on: seen.append((v, a, on)))
    out.set_volts(3.3)
    out.set_volts(3.3)
    out.set_current_limit(0.5)
    out.set_output(True)
    out.set_output(True)
    assert not out.set_volts(31.0)  # beyond the supply's range: refused, nothing changes
    out.set_output(False)
    assert seen == [(3.3, 1.0, False), (3.3, 0.5, False), (3.3, 0.5, True), (3.3, 0.5, False)]


@pytest.mark.parametrize(
    "line",
    [
        "VOLT 4.5",
        "volt 4.5",
        ":SOUR:VOLT 4.5",
        "SOURce:VOLTage 4.5",
        "source:voltage:level:immediate:amplitude 4.5",
        "VOLT:LEV 4.5",
    ],
)
def test_scpi_long_and_short_forms_in_any_case(line: str) -> None:
    instrument = ScpiInstrument(EmulatedOutput())
    assert instrument.handle(line) == []
    assert instrument.output.volts == 4.5
    assert instrument.handle("SYST:ERR?") == ['+0,"No error"']


def test_scpi_queries_and_compound_lines() -> None:
    instrument = ScpiInstrument(EmulatedOutput(load=100.0))
    assert instrument.handle("*IDN?") == ["powerhil,Emulated SCPI supply,0,1.0"]
    assert instrument.handle("CURR 0.02;VOLT 3;OUTP:STAT ON;*OPC?") == ["1"]
    assert instrument.handle("outp?") == ["1"]
    assert instrument.handle("MEAS:SCAL:VOLT:DC?;measure:current?") == [
        "+2.00000000E+00",
        "+2.00000000E-02",
    ]
    assert instrument.handle("VOLT?;CURR?") == ["+3.00000000E+00", "+2.00000000E-02"]
    assert instrument.handle("INST:NSEL 1;INST:NSEL?") == ["1"]
    assert instrument.handle("OUTP 0;OUTP?") == ["0"]
    assert instrument.handle("*RST;VOLT?;OUTP?") == ["+0.00000000E+00", "0"]


def test_scpi_errors_go_to_the_error_queue() -> None:
    instrument = ScpiInstrument(EmulatedOutput())
    for line in ("VOLTS 3", "VOLT abc", "VOLT 99", "OUTP MAYBE", "INST:NSEL 2", "CURR"):
        assert instrument.handle(line) == []
    errors = [instrument.handle("SYSTEM:ERROR:NEXT?")[0] for _ in range(7)]
    assert errors == [
        '-113,"Undefined header"',
        '-104,"Data type error"',
        '-222,"Data out of range"',
        '-104,"Data type error"',
        '-222,"Data out of range"',
        '-109,"Missing parameter"',
        '+0,"No error"',
    ]
    instrument.handle("VOLTS 3")
    instrument.handle("*CLS")
    assert instrument.handle("SYST:ERR?") == ['+0,"No error"']


def test_korad_commands_split_by_their_syntax_or_by_a_pause() -> None:
    k = KoradInstrument(EmulatedOutput(load=10.0))
    assert k.feed(b"VSET1:5") == b""
    assert k.feed(b".0") == b""
    assert k.output.volts == 0.0  # more digits may yet come
    assert k.idle() == b""
    assert k.output.volts == 5.0
    assert k.feed(b"ISET1:0.25VSET1?") == b"05.00"  # the next command ends the value
    assert k.output.amps_limit == 0.25
    assert k.feed(b"ISET1?") == b"0.250"
    assert k.feed(b"OUT1") == b""
    assert k.feed(b"STATUS?") == bytes([0x40])  # on, constant current (10 ohm at 5 V)
    assert k.feed(b"VOUT1?IOUT1?") == b"02.500.250"
    assert k.feed(b"*IDN?") == b"KORAD KA3005P V5.8 SN:00000001"
    k.feed(b"OUT0")
    assert k.feed(b"STATUS?") == bytes([0x01])  # off, (would be) constant voltage
    assert k.commands[-2:] == ["OUT0", "STATUS?"]


def test_korad_ignores_bytes_that_make_no_command() -> None:
    k = KoradInstrument(EmulatedOutput())
    assert k.feed(b"\r\nHELLO") == b""
    assert k.idle() == b""
    assert k.feed(b"VSET1?") == b"00.00"
    assert k.commands == ["VSET1?"]


async def test_the_scpi_server_stops_with_its_nursery() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_scpi, ScpiInstrument(EmulatedOutput()))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"*IDN?\n")
        assert await stream.receive_some() == b"powerhil,Emulated SCPI supply,0,1.0\n"
        await stream.aclose()
        nursery.cancel_scope.cancel()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
