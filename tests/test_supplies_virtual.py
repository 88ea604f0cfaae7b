"""`follow` through the real drivers to the emulators, in real time: what the virtual bench
does, with the emulated output's changes standing in for the simulator's rail."""

from __future__ import annotations

import trio

from harness.scenario.profile import Profile, SupplyPoint
from harness.supplies.emulated import EmulatedOutput, KoradInstrument, ScpiInstrument
from harness.supplies.emulators import serve_korad, serve_scpi
from harness.supplies.follow import Setting, follow
from harness.supplies.korad import KoradSupply
from harness.supplies.limits import Limits
from harness.supplies.scpi import ScpiSupply

DIP = Profile(
    [
        SupplyPoint(0.0, 5.0, 0.05),
        SupplyPoint(0.2, 5.0, 0.05),
        SupplyPoint(0.4, 3.0, 0.05),
        SupplyPoint(0.6, 3.0, 0.05),
        SupplyPoint(0.6, 5.0, 0.05),
        SupplyPoint(0.8, 5.0, 0.05),
    ]
)


async def test_a_dip_through_scpi_reaches_the_rail_on_time(nursery: trio.Nursery) -> None:
    rail: list[tuple[float, float, bool]] = []
    output = EmulatedOutput(
        load=100.0, on_output=lambda v, a, on: rail.append((trio.current_time(), v, on))
    )
    port = await nursery.start(serve_scpi, ScpiInstrument(output))
    supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET")
    await supply.identify()
    settings: list[Setting] = []
    readbacks: list[float] = []
    origin = trio.current_time() + 0.05
    await follow(
        supply,
        DIP,
        origin=origin,
        limits=Limits(max_volts=5.5, max_amps=0.1),
        on_setting=settings.append,
        on_readback=lambda t, r: readbacks.append(r.volts),
        poll_rate=20.0,
    )
    volts = [v for _, v, on in rail if on]
    assert volts[0] == 5.0 and min(volts) == 3.0 and volts[-1] == 5.0
    assert len([v for v in volts if 3.0 < v < 5.0]) == 3  # 20 settings/s along 0.2 s
    reached = next(s for s in settings if s.point == 3)
    assert reached.at - reached.due < 0.05  # it took effect within 50 ms of its time
    assert all(s.latency < 0.05 for s in settings)
    assert rail[-1][2] is False and not output.on
    assert 3.0 in readbacks and 5.0 in readbacks
    await supply.aclose()


async def test_ctrl_c_during_a_run_switches_a_scpi_supply_off(nursery: trio.Nursery) -> None:
    output = EmulatedOutput()
    port = await nursery.start(serve_scpi, ScpiInstrument(output))
    supply = ScpiSupply(f"TCPIP::127.0.0.1::{port}::SOCKET")
    with trio.move_on_after(0.3):
        await follow(supply, DIP, origin=trio.current_time(), until=float("inf"))
    assert not output.on  # off, at the volts it had reached along the ramp
    assert 3.0 < output.volts < 5.0
    await supply.aclose()


async def test_a_dip_through_korad(nursery: trio.Nursery) -> None:
    output = EmulatedOutput(load=100.0)
    path = await nursery.start(serve_korad, KoradInstrument(output))
    supply = KoradSupply(path)
    settings: list[Setting] = []
    profile = Profile(
        [SupplyPoint(0, 5.0, 0.05), SupplyPoint(1, 3.0, 0.05), SupplyPoint(1.5, 3.0, 0.05)]
    )
    await follow(
        supply, profile, origin=trio.current_time(), on_setting=settings.append, poll_rate=1.0
    )
    ramp = [s for s in settings if s.what == "volts" and s.point is None]
    assert 2 <= len(ramp) <= 4  # at most the Korad's 5 a second, less what the polls take
    assert [s.value for s in settings if s.point == 2] == [3.0]
    assert settings[-1].what == "output" and settings[-1].value is False and not output.on
    await supply.aclose()
