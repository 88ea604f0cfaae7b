"""Several devices with powerhil's pytest plugin (docs/pytest.md, "Several devices"): a
`device_scenario` of two [[device]] entries makes the `devices` fixture a live session on both,
a handle on each by name (`device` is the first of them); `run_scenario` runs such a scenario
as `harness run` does and its record has a section for each device."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pytest_plugin.device import Device
from harness.pytest_plugin.fixtures import ScenarioRunner
from harness.pytest_plugin.options import PowerhilOptions
from harness.runner.console import verdict_table
from harness.scenario.load import load
from harness.scenario.model import Scenario

TWO_RAILS = Path(__file__).parent / "scenarios" / "two-rails.toml"


@pytest.fixture(autouse=True)
def on_the_mock(powerhil_options: PowerhilOptions) -> None:
    """The scenario's devices are mocks whatever the session's target, and a test runs on the
    clock of the session's target: these tests are for a session on the mock."""
    if powerhil_options.target != "mock":
        pytest.skip(f"two mocks on the test's clock, not on the {powerhil_options.target}'s")


@pytest.fixture
def device_scenario() -> Scenario:
    """This module's sessions run the two boards of `two-rails.toml`."""
    return load(TWO_RAILS)


async def test_each_device_answers_its_own_commands(devices: dict[str, Device]) -> None:
    assert list(devices) == ["left", "right"]
    left, right = devices["left"], devices["right"]
    await left.command("set_interval", value=200)  # to the left board alone
    for device in (left, right):
        await device.command("hello")  # its answer carries the interval now in force
    assert left.hello is not None and left.hello.interval == 200
    assert right.hello is not None and right.hello.interval != 200
    assert right.now() < 1.0  # before the scenario's own step, sent to each at 1 s
    assert (left.totals.commands_done, right.totals.commands_done) == (2, 1)
    (sample,) = await right.samples(1)
    assert 4.9 < sample.v < 5.1  # before the dip at 3 s


async def test_the_device_fixture_is_the_first_device(
    device: Device, devices: dict[str, Device]
) -> None:
    assert device is devices["left"] and device.name == "left"


async def test_a_record_has_a_section_for_each_device(run_scenario: ScenarioRunner) -> None:
    record = await run_scenario(TWO_RAILS)
    assert record.verdict == "pass", verdict_table(record)
    assert [d.name for d in record.devices] == ["left", "right"]
    right = record.devices[1]
    assert right.injected.get("drop", 0) > 0 and right.link.lost == 0  # resent, not lost
    assert record.devices[0].injected == {}
