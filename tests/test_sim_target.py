"""`--target sim`: the real firmware ELF in simavr, driven by the same scenarios as the mock.
Real time: these tests take about as long as their scenarios (two minutes in all)."""

from __future__ import annotations

import io
import math
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from harness.errors import TargetError
from harness.runner.bus import RunEvent
from harness.runner.context import RunContext, RunOptions
from harness.runner.run import run_scenario
from harness.scenario.load import load, parse
from harness.store.recorder import recorder
from harness.targets import sim, simrunner
from harness.targets.mock.ina219 import Ina219


def options(**kw: object) -> RunOptions:
    return RunOptions(target="sim", out=io.StringIO(), **kw)  # type: ignore[arg-type]


class Runner:
    """An extension that keeps the run's target, to check its runner process afterwards."""

    def __init__(self) -> None:
        self.target: sim.SimTarget | None = None

    @asynccontextmanager
    async def __call__(self, ctx: RunContext) -> AsyncIterator[None]:
        self.target = ctx.target
        yield

    def gone(self) -> bool:
        """The runner exited and its process was reaped: nothing left behind."""
        assert self.target is not None and self.target.runner is not None
        process = self.target.runner.process
        assert process is not None
        return process.returncode is not None and not Path(f"/proc/{process.pid}").exists()


@pytest.mark.parametrize("name", ["brownout", "lossy-link", "battery-budget"])
async def test_shipped_scenario_passes_on_the_sim(name: str, tmp_path: Path) -> None:
    runner = Runner()
    result = await run_scenario(
        load(f"scenarios/{name}.toml"), options(), (recorder(tmp_path / "s.db"), runner)
    )
    rec = result.record
    assert result.exit_code == 0, rec.expectations
    assert rec.target == "sim" and rec.link.lost == 0
    assert rec.device.hello.fw == "1.0.0"
    assert runner.gone()


KNOWN_RAIL = """\
[scenario]
name = "known rail"
duration = "4s"
[[supply]]
at = "0s"
volts = 12.3456
amps = 0.56789
[[step]]
at = "0s"
send = { cmd = "set_interval", value = 250 }
"""


async def test_reported_vaw_match_the_datasheet_within_one_lsb(tmp_path: Path) -> None:
    """The sim's INA219 has no noise: every reading is the registers for this rail, so the
    firmware's averages must equal the datasheet's arithmetic to one LSB."""
    samples = []

    @asynccontextmanager
    async def keep(ctx: RunContext) -> AsyncIterator[None]:
        ctx.bus.subscribe(lambda e: samples.append(e.sample) if hasattr(e, "sample") else None)
        yield

    result = await run_scenario(parse(KNOWN_RAIL, tmp_path / "k.toml"), options(), (keep,))
    assert result.exit_code == 0
    bus, shunt, current, power, overflow = Ina219().registers(12.3456, 0.56789)
    assert (bus, shunt, current, power, overflow) == (3086, 5679, 5679, 3505, False)
    v, a, w = bus * 0.004, current * 0.0001, power * 0.002  # 12.344 V, 0.5679 A, 7.010 W
    steady = [s for s in samples if s.dt <= 250][1:]
    assert len(steady) >= 8
    for s in steady:
        assert abs(s.v - v) <= 0.004 and abs(s.vmin - v) <= 0.004 and abs(s.vmax - v) <= 0.004
        assert abs(s.a - a) <= 0.0001 and abs(s.amax - a) <= 0.0001
        assert abs(s.w - w) <= 0.002
        assert s.status == "ok" and s.n > 200  # ~940 readings a second at 12 bits


OVER_MAX = """\
[scenario]
name = "over the INA219's absolute maximum"
duration = "3s"
[[supply]]
at = "0s"
volts = 24.0
amps = 0.1
[[supply]]
at = "1s"
volts = 24.0
[[supply]]
at = "1.2s"
volts = 28.0
[[supply]]
at = "2s"
volts = 28.0
[[supply]]
at = "2.2s"
volts = 24.0
"""


async def test_a_rail_above_26v_is_an_event_each_way(tmp_path: Path) -> None:
    events: list[RunEvent] = []

    @asynccontextmanager
    async def keep(ctx: RunContext) -> AsyncIterator[None]:
        ctx.bus.subscribe(lambda e: events.append(e) if isinstance(e, RunEvent) else None)
        yield

    out = io.StringIO()
    opts = RunOptions(target="sim", out=out)
    result = await run_scenario(parse(OVER_MAX, tmp_path / "o.toml"), opts, (keep,))
    assert result.exit_code == 0
    sensor = [(e.data["state"], e.data["volts"], e.at) for e in events if e.kind == "sensor"]
    assert [(state, volts > 26) for state, volts, _ in sensor] == [
        ("over_max", True),
        ("within_max", False),
    ]
    # the rail is above 26 V from 1.1 s (half-way up the ramp) to 2.1 s (half-way down)
    assert 1.1 <= sensor[0][2] < 2.0 < 2.1 <= sensor[1][2]
    assert "above the INA219's absolute maximum" in out.getvalue()


SHARED_BROWNOUT = """\
[scenario]
name = "shared rail brownout"
duration = "14s"
[device]
shared_rail = true
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "4s"
volts = 5.0
[[supply]]
at = "5s"
volts = 2.0
[[supply]]
at = "7s"
volts = 2.0
[[supply]]
at = "8s"
volts = 5.0
[[expect]]
resets = 1
"""


async def test_brownout_below_2v7_on_a_shared_rail_is_a_new_boot_with_its_loss_counted(
    tmp_path: Path,
) -> None:
    result = await run_scenario(
        parse(SHARED_BROWNOUT, tmp_path / "b.toml"), options(), (recorder(tmp_path / "b.db"),)
    )
    rec = result.record
    assert result.exit_code == 0, rec.expectations
    (reset,) = rec.device.resets
    assert reset.new_boot == (reset.old_boot + 1) % 65536
    # Below 2.7 V from 4.77 s to 7.23 s; the last sample before it ended at a whole second.
    assert 2.4 < reset.time_lost < 4.0
    assert rec.link.lost == 0 and rec.link.duplicated == 0


async def test_sim_dying_mid_run_fails_the_run_and_the_store_keeps_what_arrived(
    tmp_path: Path,
) -> None:
    @asynccontextmanager
    async def kill_the_runner(ctx: RunContext) -> AsyncIterator[None]:
        async def later() -> None:
            await trio.sleep(3.5)
            ctx.target.runner.process.kill()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            yield

    db = tmp_path / "d.db"
    runner = Runner()
    result = await run_scenario(
        load("scenarios/clean.toml"), options(), (recorder(db), runner, kill_the_runner)
    )
    rec = result.record
    assert result.exit_code == 2 and rec.verdict == "error"
    assert rec.error.startswith("the sim runner exited with status -9")
    stored = sqlite3.connect(db).execute("SELECT count(*) FROM samples").fetchone()[0]
    assert stored == rec.link.delivered >= 2
    assert runner.gone()


async def test_missing_toolchain_names_the_packages(tmp_path: Path) -> None:
    """What a machine without simavr sees: firmware/sim's make rule prints the apt line."""
    (tmp_path / "Makefile").write_text(
        "firmware sim:\n\t@echo 'sim: simavr headers missing: sudo apt-get install simavr libsimavr-dev libsimavrparts1' >&2; exit 2\n"
    )
    with pytest.raises(TargetError) as info:
        await simrunner.build(tmp_path)
    assert (
        str(info.value)
        == "sim: simavr headers missing: sudo apt-get install simavr libsimavr-dev libsimavrparts1"
    )


def test_every_shipped_scenario_is_runnable_on_the_sim() -> None:
    """What the sim cannot do would be refused before the run; the shipped ones need nothing
    the sim lacks."""
    for path in sorted(Path("scenarios").glob("*.toml")):
        needs = set(load(path).needs)
        assert needs <= sim.SimTarget.capabilities, (path, needs)
    assert math.isclose(sim.RAMP_STEP, 0.01)
