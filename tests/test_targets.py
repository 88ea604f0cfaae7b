"""Every target offers the runner the whole `Target` protocol, with the same signatures, and
reports power and port changes through the one callback it is started with."""

from __future__ import annotations

import inspect
import io
from pathlib import Path

import pytest
import trio
import trio.testing

from harness.runner.context import RunOptions
from harness.runner.run import run_scenario
from harness.scenario.load import load
from harness.targets import TARGETS, PowerChange, Target, TargetEvent, make_target
from harness.targets.base import Target as TargetProtocol

MEMBERS = [
    name
    for name in ("name", "capabilities", "truth", *vars(TargetProtocol))
    if not name.startswith("_")
]


@pytest.mark.parametrize("name", TARGETS)
def test_each_target_has_every_member_of_the_protocol(name: str) -> None:
    target = make_target(name, load("scenarios/clean.toml"), 0, "/dev/null")
    for member in MEMBERS:
        assert hasattr(target, member), f"{name} lacks {member}"
        declared = getattr(TargetProtocol, member, None)
        if inspect.isfunction(declared):
            mine = getattr(type(target), member)
            assert inspect.signature(mine) == inspect.signature(declared), (name, member)
            assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(declared)


def test_an_unknown_target_is_one_line() -> None:
    with pytest.raises(Exception, match=r"--target nope: unknown target; choose one of mock"):
        make_target("nope", load("scenarios/clean.toml"), 0)


async def test_the_mock_reports_its_boots_through_the_start_callback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A reset step power-cycles the mock: the run's observer hears both changes as `power`
    events from the one callback, and nothing else of the device's own events."""
    heard: list[TargetEvent] = []
    scenario = load("scenarios/reset.toml")
    target: Target = make_target("mock", scenario, scenario.seed)
    start = target.start

    async def spy(nursery: trio.Nursery, origin: float, on_event: object) -> trio.abc.Stream:
        def both(e: TargetEvent) -> None:
            heard.append(e)
            on_event(e)  # type: ignore[operator]

        return await start(nursery, origin, both)

    target.start = spy  # type: ignore[method-assign]
    result = await run_scenario(scenario, RunOptions(fast=True, out=io.StringIO()), (), target)
    assert result.exit_code == 0
    assert all(isinstance(e, PowerChange) for e in heard)
    assert [(e.boot, e.cause) for e in heard] == [(1, "power on"), (None, "reset"), (2, "reset")]
    assert result.record.device.boots == [1, 2]


def test_the_sim_keeps_its_eeprom_where_the_composition_root_says(tmp_path: Path) -> None:
    scenario = load("scenarios/clean.toml")
    target = make_target("sim", scenario, 0, sim_eeprom=tmp_path / "x.eeprom")
    assert target.eeprom == tmp_path / "x.eeprom"  # type: ignore[attr-defined]
