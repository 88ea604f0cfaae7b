"""The Korad driver against the Korad emulator on a pseudo-terminal, through pyserial: the
bytes it sends (no terminators), its pacing, its readback confirmations, and its errors."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import trio

from harness.supplies.base import Readback, SupplyError
from harness.supplies.emulated import EmulatedOutput, KoradInstrument
from harness.supplies.emulators import serve_korad
from harness.supplies.korad import PACING, KoradSupply
from harness.transports.pty import Pty


class Recording(KoradInstrument):
    """The emulator, noting the raw bytes it receives and when they arrive."""

    def __init__(self, output: EmulatedOutput) -> None:
        super().__init__(output)
        self.received: list[bytes] = []
        self.arrivals: list[float] = []

    def feed(self, data: bytes) -> bytes:
        self.received.append(data)
        self.arrivals.append(trio.current_time())
        return super().feed(data)


@pytest.fixture
async def korad(nursery: trio.Nursery) -> AsyncIterator[tuple[Recording, KoradSupply]]:
    instrument = Recording(EmulatedOutput(load=10.0))
    path = await nursery.start(serve_korad, instrument)
    supply = KoradSupply(path)
    yield instrument, supply
    await supply.aclose()


async def test_identify_set_switch_and_read_back(korad: tuple[Recording, KoradSupply]) -> None:
    instrument, supply = korad
    assert await supply.identify() == "KORAD KA3005P V5.8 SN:00000001"
    await supply.set_current_limit(0.25)
    await supply.set_volts(5.0)
    await supply.output(True)
    # 10 ohm would draw 0.5 A at 5 V: constant current at 0.25 A, 2.5 V.
    assert await supply.measure() == Readback(2.5, 0.25)
    await supply.set_volts(2.0)
    assert await supply.measure() == Readback(2.0, 0.2)
    await supply.output(False)
    assert await supply.measure() == Readback(0.0, 0.0)
    assert instrument.commands == [
        "*IDN?",
        "ISET1:0.250",
        "ISET1?",
        "VSET1:5.00",
        "VSET1?",
        "OUT1",
        "STATUS?",
        "VOUT1?",
        "IOUT1?",
        "VSET1:2.00",
        "VSET1?",
        "VOUT1?",
        "IOUT1?",
        "OUT0",
        "STATUS?",
        "VOUT1?",
        "IOUT1?",
    ]
    assert supply.describe() == (
        f"{supply.name}: KORAD KA3005P V5.8 SN:00000001 (serial, 9600 baud, settings confirmed "
        "by readback)"
    )


async def test_commands_have_no_terminator_and_are_paced(
    korad: tuple[Recording, KoradSupply],
) -> None:
    instrument, supply = korad
    await supply.set_volts(12.5)
    await supply.output(True)
    assert b"".join(instrument.received) == b"VSET1:12.50VSET1?OUT1STATUS?"
    # Each command arrives on its own, at least PACING after the one before.
    assert len(instrument.received) == 4
    gaps = [b - a for a, b in zip(instrument.arrivals, instrument.arrivals[1:], strict=False)]
    assert all(gap >= PACING - 0.005 for gap in gaps), gaps


async def test_a_value_the_supply_does_not_take_is_an_error(
    korad: tuple[Recording, KoradSupply],
) -> None:
    _, supply = korad
    with pytest.raises(SupplyError) as err:
        await supply.set_volts(45.0)
    assert str(err.value).startswith(
        f"{supply.name}: the supply did not take VSET1:45.00 (VSET1? reads 0"
    )


async def test_a_reply_longer_than_expected_does_not_shift_the_next(nursery: trio.Nursery) -> None:
    """Some firmwares answer ISET1? with a sixth byte; the next query's reply is still its own."""

    class Chatty(KoradInstrument):
        def feed(self, data: bytes) -> bytes:
            reply = super().feed(data)
            return reply + b"K" if data == b"ISET1?" else reply

    instrument = Chatty(EmulatedOutput())
    path = await nursery.start(serve_korad, instrument)
    supply = KoradSupply(path)
    await supply.set_current_limit(0.5)
    await supply.set_volts(3.0)
    assert instrument.output.volts == 3.0
    await supply.aclose()


async def test_no_such_port() -> None:
    supply = KoradSupply("/dev/ttyNOSUCH0")
    with pytest.raises(SupplyError) as err:
        await supply.identify()
    assert str(err.value).startswith("/dev/ttyNOSUCH0: no such serial port")


async def test_a_port_where_nothing_answers() -> None:
    pty = Pty()
    supply = KoradSupply(pty.path, timeout=0.2)
    with pytest.raises(SupplyError) as err:
        await supply.identify()
    assert str(err.value) == (
        f"{pty.path}: no answer to *IDN? within 0.2 s (is it a Korad/Tenma supply, on, at "
        "9600 baud?)"
    )
    await supply.aclose()
    await pty.aclose()


async def test_the_emulator_lets_go_of_its_pty_when_cancelled() -> None:
    async with trio.open_nursery() as nursery:
        path = await nursery.start(serve_korad, KoradInstrument(EmulatedOutput()))
        assert os.path.exists(path)
        nursery.cancel_scope.cancel()
    with pytest.raises(OSError):
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        os.close(fd)
