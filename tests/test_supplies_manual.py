"""A supply set by hand (each setting announced, with a countdown before it), and how a user
names a supply on the command line."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from harness.errors import UserError
from harness.scenario.profile import Profile, SupplyPoint
from harness.supplies.emulated import EmulatedOutput, ScpiInstrument
from harness.supplies.emulators import serve_scpi
from harness.supplies.follow import follow
from harness.supplies.korad import KoradSupply
from harness.supplies.manual import Announcement, ManualSupply, count_down, upcoming
from harness.supplies.scpi import ScpiSupply
from harness.supplies.spec import SupplySpec, make_supply, open_supply, parse_supply

BROWNOUT = Profile(
    [
        SupplyPoint(0.0, 5.0, 0.1),
        SupplyPoint(5.0, 5.0, 0.1),
        SupplyPoint(7.0, 3.0, 0.1),
        SupplyPoint(10.0, 3.0, 0.1),
        SupplyPoint(10.0, 5.0, 0.1),
        SupplyPoint(12.0, 5.0, 0.1),
    ]
)


async def test_each_setting_is_announced_when_it_is_due(autojump_clock: MockClock) -> None:
    said: list[tuple[float, str]] = []
    origin = trio.current_time()
    supply = ManualSupply(lambda text: said.append((trio.current_time() - origin, text)))
    assert supply.describe() == (
        "manual: applied by hand (each setting announced when due; no readback)"
    )
    await follow(supply, BROWNOUT, origin=origin)
    assert said == [
        (0.0, "set the current limit to 0.100 A now"),
        (0.0, "set the supply to 5.00 V now"),
        (0.0, "switch the output on now"),
        (6.0, "set the supply to 4.00 V now"),  # a ramp, one turn a second
        (7.0, "set the supply to 3.00 V now"),
        (10.0, "set the supply to 5.00 V now"),
        (12.0, "switch the output off now"),
    ]
    assert await supply.measure() is None


async def test_upcoming_lists_what_follow_will_announce(autojump_clock: MockClock) -> None:
    assert list(upcoming(BROWNOUT, 100.0)) == [
        Announcement(100.0, 5.0, 1),
        Announcement(106.0, 4.0, None),
        Announcement(107.0, 3.0, 3),
        Announcement(110.0, 5.0, 5),
    ]


def test_a_countdown_line() -> None:
    a = Announcement(10.0, 3.0, 3)
    assert a.countdown(7.0) == "in 3s: set the supply to 3.00 V"
    assert a.countdown(9.5) == "in 1s: set the supply to 3.00 V"
    assert a.countdown(10.0) == "set the supply to 3.00 V now"


async def test_a_countdown_before_each_setting(autojump_clock: MockClock) -> None:
    said: list[tuple[float, str]] = []
    origin = trio.current_time()
    await count_down(
        upcoming(BROWNOUT, origin, start=0.0),
        lambda text: said.append((trio.current_time() - origin, text)),
    )
    assert said == [
        (3.0, "in 3s: set the supply to 4.00 V"),
        (4.0, "in 2s: set the supply to 4.00 V"),
        (5.0, "in 1s: set the supply to 4.00 V"),
        # 3.00 V comes a second after 4.00 V, and 5.00 V three seconds after 3.00 V: a
        # countdown never talks over the setting before it
        (8.0, "in 2s: set the supply to 5.00 V"),
        (9.0, "in 1s: set the supply to 5.00 V"),
    ]


# --- DRIVER:RESOURCE -----------------------------------------------------------------------


def test_names_make_drivers() -> None:
    spec = parse_supply("scpi:TCPIP::192.168.1.50::5025::SOCKET")
    assert spec == SupplySpec("scpi", "TCPIP::192.168.1.50::5025::SOCKET")
    scpi = make_supply(spec)
    assert isinstance(scpi, ScpiSupply)
    assert scpi.resource == "TCPIP::192.168.1.50::5025::SOCKET"
    assert scpi.name == "scpi:TCPIP::192.168.1.50::5025::SOCKET"
    korad = make_supply(parse_supply("korad:/dev/ttyUSB0"))
    assert isinstance(korad, KoradSupply) and korad.port == "/dev/ttyUSB0"
    assert isinstance(make_supply(parse_supply("manual")), ManualSupply)
    assert parse_supply(" SCPI:ASRL/dev/ttyUSB0::INSTR ").resource == "ASRL/dev/ttyUSB0::INSTR"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "visa:TCPIP::1.2.3.4::INSTR",
            '--supply visa:TCPIP::1.2.3.4::INSTR: unknown supply driver "visa"; use '
            "scpi:RESOURCE, e.g. scpi:TCPIP::192.168.1.50::5025::SOCKET, korad:PORT, e.g. "
            "korad:/dev/ttyUSB0, manual",
        ),
        (
            "korda:/dev/ttyUSB0",
            '--supply korda:/dev/ttyUSB0: unknown supply driver "korda" (did you mean "korad"?); use scpi:RESOURCE, e.g. scpi:TCPIP::192.168.1.50::5025::SOCKET, korad:PORT, e.g. korad:/dev/ttyUSB0, manual',
        ),
        (
            "scpi",
            "--supply scpi: scpi needs a resource: scpi:RESOURCE, e.g. scpi:TCPIP::192.168.1.50::5025::SOCKET",
        ),
        (
            "manual:knob",
            "--supply manual:knob: a manual supply takes no resource (write just: manual)",
        ),
    ],
)
def test_a_wrong_name_is_one_line(name: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_supply(name)
    assert str(err.value) == message


async def test_open_supply_identifies_and_closes(nursery: trio.Nursery) -> None:
    instrument = ScpiInstrument(EmulatedOutput())
    port = await nursery.start(serve_scpi, instrument)
    spec = parse_supply(f"scpi:TCPIP::127.0.0.1::{port}::SOCKET")
    async with open_supply(spec) as supply:
        assert "powerhil,Emulated SCPI supply" in supply.describe()
        await supply.set_volts(1.5)
    assert instrument.output.volts == 1.5
    with pytest.raises(UserError, match="used after it was closed"):
        await supply.set_volts(2.0)
