"""The SCPI driver: the exact bytes each dialect family puts on the wire (against pyvisa-sim
instruments in tests/supplies/), and the whole path through pyvisa-py's socket to the SCPI
emulator on loopback, with the errors a user meets on the way."""

from __future__ import annotations

import errno
import functools
import socket
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import serial
import trio
from pyvisa_sim.devices import Device

from harness.supplies.base import Readback, SupplyError
from harness.supplies.emulated import EmulatedOutput, ScpiInstrument
from harness.supplies.emulators import serve_scpi
from harness.supplies.scpi import ScpiSupply
from harness.supplies.visa_errors import explain

SIMULATED = Path(__file__).parent / "supplies"


def sim(name: str) -> str:
    return f"{SIMULATED / name}@sim"


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every message the driver writes to a simulated instrument, terminator included."""
    written: list[bytes] = []
    original = Device.write

    def recording(self: Device, data: bytes) -> None:
        written.append(data)
        original(self, data)

    monkeypatch.setattr(Device, "write", recording)
    return written


def taken(wire: list[bytes]) -> list[bytes]:
    out = list(wire)
    wire.clear()
    return out


# --- each family's bytes -------------------------------------------------------------------


async def test_keysight_over_a_socket(wire: list[bytes]) -> None:
    supply = ScpiSupply("TCPIP::e36312a.bench::5025::SOCKET", backend=sim("keysight.yaml"))
    idn = await supply.identify()
    assert idn.startswith("Keysight Technologies,E36312A")
    # The error queue is read empty, so an old error is not taken for one of ours.
    assert taken(wire) == [b"*IDN?\n", b"SYST:ERR?\n"]
    assert "Keysight/Agilent E36xx" in supply.describe()

    await supply.set_current_limit(0.25)
    assert taken(wire) == [b"CURR 0.250\n", b"*OPC?\n"]
    await supply.set_volts(5)
    assert taken(wire) == [b"VOLT 5.000\n", b"*OPC?\n"]
    await supply.output(True)
    assert taken(wire) == [b"OUTP ON\n", b"*OPC?\n"]
    assert await supply.measure() == Readback(5.0, 0.125)
    assert taken(wire) == [b"MEAS:VOLT?\n", b"MEAS:CURR?\n"]
    await supply.output(False)
    assert taken(wire) == [b"OUTP OFF\n", b"*OPC?\n"]
    await supply.aclose()


async def test_keysight_on_a_serial_port_goes_remote_and_selects_its_channel(
    wire: list[bytes],
) -> None:
    supply = ScpiSupply("ASRL1::INSTR", channel=2, backend=sim("keysight.yaml"))
    await supply.identify()
    assert taken(wire) == [
        b"*IDN?\n",
        b"SYST:ERR?\n",
        b"SYST:REM\n",
        b"*OPC?\n",
        b"INST:NSEL 2\n",
        b"*OPC?\n",
        b"SYST:ERR?\n",  # *OPC? does not say the channel exists; the error queue does
    ]
    await supply.set_volts(3.3)
    assert taken(wire) == [b"VOLT 3.300\n", b"*OPC?\n"]
    # Its replies end in CR LF on the serial port; the CR is not part of the number.
    assert await supply.measure() == Readback(3.3, 0.125)
    assert "channel 2" in supply.describe()
    await supply.aclose()


async def test_rigol_names_the_channel_in_every_command(wire: list[bytes]) -> None:
    supply = ScpiSupply("TCPIP::dp832.bench::5555::SOCKET", channel=2, backend=sim("rigol.yaml"))
    await supply.identify()
    assert taken(wire) == [b"*IDN?\n", b"SYST:ERR?\n"]  # no selection: the commands carry it
    assert "Rigol DP800" in supply.describe()
    await supply.set_volts(3.3)
    assert taken(wire) == [b":SOUR2:VOLT 3.300\n", b"*OPC?\n"]
    await supply.output(True)
    assert taken(wire) == [b":OUTP CH2,ON\n", b"*OPC?\n"]
    assert await supply.measure() == Readback(3.3, 0.01)
    assert taken(wire) == [b":MEAS:VOLT? CH2\n", b":MEAS:CURR? CH2\n"]
    await supply.aclose()


async def test_rigol_over_vxi11_and_channel_one_by_default(wire: list[bytes]) -> None:
    supply = ScpiSupply("TCPIP::dp832.bench::INSTR", backend=sim("rigol.yaml"))
    await supply.set_current_limit(0.5)
    assert taken(wire) == [b"*IDN?\n", b"SYST:ERR?\n", b":SOUR1:CURR 0.500\n", b"*OPC?\n"]
    await supply.aclose()


async def test_siglent_acknowledges_by_its_error_queue(wire: list[bytes]) -> None:
    supply = ScpiSupply("TCPIP::spd3303x.bench::5025::SOCKET", backend=sim("siglent.yaml"))
    await supply.identify()
    assert taken(wire) == [b"*IDN?\n", b"SYST:ERR?\n"]
    assert "Siglent SPD" in supply.describe()
    await supply.set_volts(5)
    assert taken(wire) == [b"CH1:VOLT 5.000\n", b"SYST:ERR?\n"]
    await supply.set_current_limit(0.1)
    assert taken(wire) == [b"CH1:CURR 0.100\n", b"SYST:ERR?\n"]
    await supply.output(True)
    assert taken(wire) == [b"OUTP CH1,ON\n", b"SYST:ERR?\n"]
    assert await supply.measure() == Readback(5.0, 0.1)
    assert taken(wire) == [b"MEAS:VOLT? CH1\n", b"MEAS:CURR? CH1\n"]
    await supply.aclose()


async def test_a_setting_the_supply_refuses_is_an_error_naming_it(wire: list[bytes]) -> None:
    supply = ScpiSupply("TCPIP::spd3303x.bench::5025::SOCKET", backend=sim("siglent.yaml"))
    with pytest.raises(SupplyError) as err:
        await supply.set_volts(40)
    assert str(err.value) == (
        'scpi:TCPIP::spd3303x.bench::5025::SOCKET: the supply refused "CH1:VOLT 40.000": '
        "-222  Data out of range"
    )
    await supply.aclose()


async def test_generic_scpi_for_a_supply_no_family_claims(wire: list[bytes]) -> None:
    supply = ScpiSupply("TCPIP::acme.bench::5025::SOCKET", channel=2, backend=sim("generic.yaml"))
    await supply.identify()
    assert taken(wire) == [
        b"*IDN?\n",
        b"SYST:ERR?\n",
        b"INST:NSEL 2\n",
        b"*OPC?\n",
        b"SYST:ERR?\n",
    ]
    assert "generic SCPI-1999" in supply.describe()
    await supply.set_volts(4.5)
    assert taken(wire) == [b"SOUR:VOLT 4.500\n", b"*OPC?\n"]
    await supply.set_current_limit(0.05)
    assert taken(wire) == [b"SOUR:CURR 0.050\n", b"*OPC?\n"]
    await supply.output(True)
    assert taken(wire) == [b"OUTP ON\n", b"*OPC?\n"]
    assert await supply.measure() == Readback(4.5, 0.05)
    assert taken(wire) == [b"MEAS:VOLT?\n", b"MEAS:CURR?\n"]
    await supply.aclose()


async def test_an_answer_that_is_not_a_number_says_so() -> None:
    supply = ScpiSupply("TCPIP::acme-overloaded.bench::5025::SOCKET", backend=sim("generic.yaml"))
    with pytest.raises(SupplyError, match=r"answered 'OVERLOAD' to \"MEAS:VOLT\?\", not a number"):
        await supply.measure()
    await supply.aclose()


# --- the emulator through pyvisa-py over loopback -----------------------------------------


@pytest.fixture
async def emulator(nursery: trio.Nursery) -> AsyncIterator[tuple[ScpiInstrument, int]]:
    output = EmulatedOutput(load=10.0)
    instrument = ScpiInstrument(output)
    port = await nursery.start(serve_scpi, instrument)
    yield instrument, port


async def test_through_a_real_socket_to_the_emulator(
    emulator: tuple[ScpiInstrument, int],
) -> None:
    instrument, port = emulator
    changes: list[tuple[float, float, bool]] = []
    instrument.output.on_output = lambda v, a, on: changes.append((v, a, on))
    supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET")
    assert await supply.identify() == "powerhil,Emulated SCPI supply,0,1.0"
    await supply.set_current_limit(0.2)
    await supply.set_volts(5.0)
    await supply.output(True)
    # 10 ohm at 5 V would draw 0.5 A: the supply holds 0.2 A and its voltage falls to 2 V.
    assert await supply.measure() == Readback(2.0, 0.2)
    await supply.set_volts(1.0)
    assert await supply.measure() == Readback(1.0, 0.1)
    await supply.output(False)
    assert await supply.measure() == Readback(0.0, 0.0)
    assert changes == [
        (0.0, 0.2, False),
        (5.0, 0.2, False),
        (5.0, 0.2, True),
        (1.0, 0.2, True),
        (1.0, 0.2, False),
    ]
    assert instrument.commands[:4] == ["*IDN?", "SYST:ERR?", "SOUR:CURR 0.200", "*OPC?"]
    await supply.aclose()
    with pytest.raises(SupplyError, match="used after it was closed"):
        await supply.set_volts(1.0)


async def test_two_supplies_closing_one_leaves_the_other_working(
    nursery: trio.Nursery,
) -> None:
    """A bench of several devices has a supply each: pyvisa shares one resource manager among
    them, so one supply's end must close its own instrument alone."""
    ports = [
        await nursery.start(serve_scpi, ScpiInstrument(EmulatedOutput(load=10.0))) for _ in range(2)
    ]
    first, second = (ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET") for port in ports)
    await first.identify()
    await second.set_volts(3.0)
    await first.aclose()
    await second.set_volts(4.0)  # its session is still open
    assert (await second.measure()).volts == 0.0  # (its output is off)
    await second.aclose()


async def test_a_named_dialect_overrides_the_identity(
    emulator: tuple[ScpiInstrument, int],
) -> None:
    instrument, port = emulator
    supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET", dialect="keysight")
    await supply.set_volts(2.5)
    assert instrument.commands == ["*IDN?", "SYST:ERR?", "VOLT 2.500", "*OPC?"]
    assert instrument.output.volts == 2.5
    await supply.aclose()


async def test_a_channel_the_supply_does_not_have_is_refused_every_time(
    emulator: tuple[ScpiInstrument, int],
) -> None:
    instrument, port = emulator
    supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET", channel=2)
    for _ in range(2):  # the session is not kept half set up: the next call tries again
        with pytest.raises(SupplyError) as err:
            await supply.set_volts(5.0)
        assert str(err.value) == (
            f'scpi:TCPIP::127.0.0.1::{port}::SOCKET: the supply refused "INST:NSEL 2": '
            '-222,"Data out of range"'
        )
    assert instrument.output.volts == 0.0
    await supply.aclose()


async def test_settings_on_a_socket_are_not_held_back_by_delayed_acks(
    emulator: tuple[ScpiInstrument, int],
) -> None:
    """Each setting is a command and a query in two writes; without TCP_NODELAY the second
    waits for the peer's delayed ACK (tens of milliseconds) on every setting."""
    _, port = emulator
    supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET")
    await supply.identify()
    took = []
    for i in range(40):
        t0 = trio.current_time()
        await supply.set_volts(1 + i / 100)
        took.append(trio.current_time() - t0)
    assert statistics.median(took) < 0.02
    await supply.aclose()


async def test_a_lost_connection_is_reported_and_the_next_call_reconnects() -> None:
    output = EmulatedOutput()
    async with trio.open_nursery() as nursery:
        first = trio.CancelScope()

        async def serve_until_stopped(task_status: trio.TaskStatus[int]) -> None:
            with first:
                await serve_scpi(ScpiInstrument(output), task_status=task_status)

        port = await nursery.start(serve_until_stopped)
        supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout=0.5)
        await supply.set_volts(1.0)
        first.cancel()
        await trio.sleep(0.05)
        with pytest.raises(SupplyError, match=f"TCPIP::127.0.0.1::{port}::SOCKET: "):
            await supply.set_volts(2.0)
        await nursery.start(functools.partial(serve_scpi, port=port), ScpiInstrument(output))
        await supply.set_volts(3.0)
        assert output.volts == 3.0
        await supply.aclose()
        nursery.cancel_scope.cancel()


# --- what a user can get wrong -------------------------------------------------------------


async def test_not_a_resource_string() -> None:
    supply = ScpiSupply("192.168.1.50:5025")
    with pytest.raises(SupplyError) as err:
        await supply.identify()
    assert str(err.value).startswith("192.168.1.50:5025: not a VISA resource string (examples: ")


async def test_nothing_listening_on_the_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET")
    with pytest.raises(SupplyError) as err:
        await supply.identify()
    assert str(err.value).startswith(f"TCPIP::127.0.0.1::{port}::SOCKET: connection refused")


async def test_an_instrument_that_never_answers(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        async with stream:
            while await stream.receive_some():
                pass

    listeners = await nursery.start(functools.partial(trio.serve_tcp, host="127.0.0.1"), silent, 0)
    port = listeners[0].socket.getsockname()[1]
    supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout=0.3)
    with pytest.raises(SupplyError) as err:
        await supply.identify()
    assert str(err.value).startswith(
        f"TCPIP::127.0.0.1::{port}::SOCKET: no answer within 0.3 s (is the supply on"
    )


def test_every_cause_pyvisa_py_reports_is_one_line() -> None:
    r = "TCPIP::bench-psu::5025::SOCKET"
    cases = {
        socket.gaierror(-2, "Name or service not known"): "no such host",
        Exception("could not connect: [Errno -2] Name or service not known"): "no such host",
        Exception("could not connect: StatusCode.error_timeout"): "no answer within 2 s",
        OSError(errno.EHOSTUNREACH, "No route to host"): "host unreachable",
        ConnectionResetError(104, "Connection reset by peer"): "closed the connection",
        ValueError("Please install PyUSB to use this resource type.\nNo module named 'usb'"): (
            "pip install 'powerhil[usb]'"
        ),
        serial.SerialException(2, "could not open port /dev/ttyUSB9: No such file"): (
            "no such serial port"
        ),
    }
    for exc, words in cases.items():
        err = explain(r, exc, 2.0)
        assert err is not None, exc
        assert str(err).startswith(f"{r}: ") and words in str(err), str(err)
        assert "\n" not in str(err)
    assert explain(r, KeyError("a bug"), 2.0) is None
