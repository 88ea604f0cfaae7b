"""Tests written in Python with powerhil's pytest plugin (docs/pytest.md). `run_scenario` runs a
scenario and returns its record; `device` is a live session on the target the command line
chooses (`--powerhil-target`, the mock by default). Both are trio fixtures: the plugin makes
each test that uses them a trio test, so the project needs no `trio_mode` (this repository
sets it anyway), and under `--powerhil-fast` (here: `powerhil_fast = true` in pyproject.toml)
they run in virtual time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.pytest_plugin.device import Device
from harness.pytest_plugin.fixtures import ScenarioRunner
from harness.runner.console import verdict_table
from harness.scenario.load import load
from harness.scenario.profile import Profile

RAIL_SAG = Path(__file__).parent / "scenarios" / "rail-sag.toml"


async def test_brownout_passes_with_the_sag_it_describes(run_scenario: ScenarioRunner) -> None:
    record = await run_scenario("brownout")  # a shipped scenario; a path works as well
    assert record.verdict == "pass", verdict_table(record)
    sag = next(e for e in record.expectations if e.label == "sag depth")
    assert isinstance(sag.measured, float) and 2.9 < sag.measured < 3.2
    assert record.link.lost == 0 and record.link.commands_failed == 0


async def test_a_scenario_built_in_code(run_scenario: ScenarioRunner) -> None:
    """The example scenario beside this file, with its rail held at 5 V: the dip it expects
    never comes, and the record says which expectations that fails."""
    steady = dataclasses.replace(load(RAIL_SAG), supply=Profile.constant(5.0, 0.2))
    record = await run_scenario(steady)
    failed = {e.label for e in record.expectations if e.state == "fail"}
    assert record.verdict == "fail"
    assert failed == {"uv alert within 3s..7s", "dip depth"}


async def test_the_device_takes_a_new_interval_and_reports_on_a_clean_link(
    device: Device,
) -> None:
    await device.command("set_interval", value=200)  # raises if refused or never answered
    await device.command("hello")  # its answer, a hello, carries the interval now in force
    assert device.hello is not None and device.hello.interval == 200
    samples = await device.samples(5)
    assert all(4.9 < s.v < 5.1 and s.status == "ok" for s in samples)  # the steady 5 V rail
    assert "calibration" in await device.log_line(r"ina219: ready", timeout=1.0)
    totals = device.totals
    assert totals.lost == 0 and totals.duplicated == 0
    assert (totals.commands_sent, totals.commands_done) == (2, 2)
