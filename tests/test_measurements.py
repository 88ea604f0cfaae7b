"""Measurements an engineer trusts: limits with units, the marginal band and its verdict, and
the measures over a window (energy, charge, RMS, time below a level, outliers), judged on the
mock in virtual time."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio

from harness.cli import main
from harness.errors import UserError
from harness.runner.context import RunOptions
from harness.runner.record import RunRecord
from harness.runner.run import run_scenario
from harness.scenario import quantities
from harness.scenario.load import parse
from harness.scenario.quantities import CHARGE, CURRENT, ENERGY, POWER, VOLTAGE


@pytest.mark.parametrize(
    ("text", "value", "dim"),
    [
        ("3.2 V", 3.2, VOLTAGE),
        ("250 mA", 0.25, CURRENT),
        ("250mA", 0.25, CURRENT),
        ("40 µA", 40e-6, CURRENT),
        ("40 uA", 40e-6, CURRENT),
        ("1.5 W", 1.5, POWER),
        ("3.4722 mWh", 3.4722e-3 * 3600, ENERGY),
        ("12.5 J", 12.5, ENERGY),
        ("2 mAh", 7.2, CHARGE),
        ("7.2 C", 7.2, CHARGE),
        ("4.5", 4.5, None),
    ],
)
def test_a_value_with_a_unit_is_held_in_base_units(
    text: str, value: float, dim: quantities.Dimension | None
) -> None:
    x, written = quantities.parse(text)
    assert x == pytest.approx(value) and written is dim


@pytest.mark.parametrize(
    ("value", "dim", "shown"),
    [
        (3.2, VOLTAGE, "3.2 V"),
        (0.25, CURRENT, "250 mA"),
        (40e-6, CURRENT, "40 µA"),
        (12.5, ENERGY, "3.4722 mWh"),
        (7.2, CHARGE, "2 mAh"),
        (0.0, POWER, "0 W"),
    ],
)
def test_a_value_prints_with_the_prefix_that_suits_it(
    value: float, dim: quantities.Dimension, shown: str
) -> None:
    assert quantities.format_value(value, dim) == shown


HEAD = '[scenario]\nname = "t"\nduration = "10s"\n\n[[expect]]\n'


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            'measure = "v"\nstat = "min"\nbelow = "3.2 mA"',
            't.toml:8: expect[1].below: "3.2 mA" is a current, v is volts',
        ),
        (
            'measure = "energy"\nbelow = "2 mAh"',
            't.toml:7: expect[1].below: "2 mAh" is a charge, energy is joules or watt-hours',
        ),
        (
            'measure = "a"\nstat = "max"\nbetween = ["1 A", "2 V"]',
            't.toml:8: expect[1].between[2]: "2 V" is a voltage, a is amps',
        ),
        (
            'measure = "v"\nstat = "min"\nbelow = "3.2 Vx"',
            't.toml:8: expect[1].below: "3.2 Vx": unknown unit "Vx" (units: V, A, W, Wh, J, Ah, '
            "C with a prefix n, µ or u, m, k)",
        ),
        (
            'measure = "v"\nstat = "avg"\nabove = "4.9 V"\nmarginal = "50 mA"',
            't.toml:9: expect[1].marginal: "50 mA" is a current, v is volts',
        ),
        (
            'measure = "v"\nstat = "avg"\nbelow = "4 V"\nbetween = ["1 V", "2 V"]',
            "t.toml:9: expect[1].between: goes alone (it gives both bounds)",
        ),
        (
            'time_below = "4.5"\nat_most = "2s"',
            't.toml:6: expect[1].time_below: "4.5": give the level in V, A or W (its unit says '
            "what is measured)",
        ),
        (
            'measure = "v"\nstat = "avg"\nabove = "5 V"\nbelow = "4 V"',
            "t.toml:5: expect[1]: no value can be both above its lower and below its upper bound",
        ),
    ],
)
def test_a_limit_that_does_not_fit_is_one_line(entry: str, error: str) -> None:
    with pytest.raises(UserError) as err:
        parse(HEAD + entry + "\n", Path("t.toml"))
    assert str(err.value) == error


def test_a_wrong_unit_exits_2_through_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "unit.toml"
    path.write_text(HEAD + 'measure = "v"\nstat = "min"\nbelow = "3.2 mA"\n')
    for argv in (["check", str(path)], ["run", str(path), "--fast", "--no-view"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == 'unit.toml:8: expect[1].below: "3.2 mA" is a current, v is volts\n'


RAIL = """\
[scenario]
name = "rail"
duration = "10s"

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
"""

JUDGED = (
    RAIL
    + """
[[expect]]
name = "comfortably above"
measure = "v"
stat = "avg"
above = "4.9 V"
marginal = "50 mV"

[[expect]]
name = "just above"
measure = "v"
stat = "avg"
above = "4.97 V"
marginal = "50 mV"

[[expect]]
name = "energy in budget"
measure = "energy"
between = ["3.3 mWh", "3.6 mWh"]

[[expect]]
name = "no sag"
time_below = "4.5 V"
at_most = "100ms"

[[expect]]
name = "sensor ready"
log = "calibration (\\\\d+)"
value = 4096

[[expect]]
name = "after the boot line"
measure = "a"
stat = "mean"
from = "log 'ready'"
to = "log 'ready' + 5s"
between = ["240 mA", "260 mA"]
"""
)
FAILING = '\n[[expect]]\nname = "too high"\nmeasure = "a"\nstat = "rms"\nabove = "300 mA"\n'


async def record_of(text: str, tmp_path: Path) -> RunRecord:
    result = await run_scenario(
        parse(text, tmp_path / "rail.toml"), RunOptions(fast=True, out=io.StringIO())
    )
    return result.record


async def test_the_energy_of_a_constant_rail_is_its_integral(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """5 V x 0.25 A for 10 s is 12.5 J, 3.4722 mWh; 0.25 A for 10 s is 2.5 C, 0.69444 mAh."""
    text = (
        RAIL
        + '[[expect]]\nmeasure = "energy"\nabove = "1 mWh"\n'
        + '[[expect]]\nmeasure = "charge"\nabove = "0.1 mAh"\n'
    )
    energy, charge = (await record_of(text, tmp_path)).expectations
    assert isinstance(energy.measured, float) and isinstance(charge.measured, float)
    assert energy.measured / 3600 == pytest.approx(3.4722e-3, rel=0.005)
    assert charge.measured / 3600 == pytest.approx(0.69444e-3, rel=0.005)
    assert energy.detail.endswith(" mWh") and energy.detail.startswith("3.4")
    assert (energy.unit, energy.limit, charge.unit) == ("J", "> 1 mWh", "C")
    assert "uncovered" not in energy.detail


async def test_the_states_are_those_the_limits_imply(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    record = await record_of(JUDGED + FAILING, tmp_path)
    states = {e.label: e.state for e in record.expectations}
    assert states == {
        "comfortably above": "pass",
        "just above": "marginal",
        "energy in budget": "pass",
        "no sag": "pass",
        "sensor ready": "pass",
        "after the boot line": "pass",
        "too high": "fail",
    }
    assert record.verdict == "fail"
    (marginal,) = [e for e in record.expectations if e.state == "marginal"]
    assert marginal.limit == "> 4.97 V (marginal within 50 mV)" and marginal.unit == "V"


@pytest.mark.parametrize(
    ("extra", "flags", "code", "verdict"),
    [
        ("", [], 0, "marginal"),
        ("", ["--strict"], 1, "marginal"),
        (FAILING, [], 1, "fail"),
    ],
    ids=["marginal only", "marginal under --strict", "a fail"],
)
def test_the_exit_code_of_a_marginal_run(
    extra: str,
    flags: list[str],
    code: int,
    verdict: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "rail.toml"
    path.write_text(JUDGED + extra)
    out, junit = tmp_path / "r.json", tmp_path / "r.xml"
    argv = ["run", str(path), "--fast", "--no-view", "--json", str(out), "--junit", str(junit)]
    assert main([*argv, *flags]) == code
    table = capsys.readouterr().out
    assert f"rail: {verdict.upper()}" in table
    assert "  MARG  just above" in table and "(limit > 4.97 V (marginal within 50 mV))" in table
    assert "counted   " in table and "1 marginal" in table
    rec = json.loads(out.read_text())
    assert rec["verdict"] == verdict and rec["strict"] == ("--strict" in flags)
    states = [e["state"] for e in rec["expectations"]]
    assert states[:6] == ["pass", "marginal", "pass", "pass", "pass", "pass"]
    suite = ET.parse(junit).getroot()
    (case,) = [c for c in suite.iter("testcase") if c.get("name") == "just above"]
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["state"] == "marginal" and props["limit"] == "> 4.97 V (marginal within 50 mV)"
    failed = case.find("failure") is not None
    assert failed == ("--strict" in flags)


SAG = """\
[scenario]
name = "sag"
duration = "10s"

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "2s"
volts = 5.0
[[supply]]
at = "4s"
volts = 3.0
[[supply]]
at = "6s"
volts = 3.0
[[supply]]
at = "8s"
volts = 5.0

[[expect]]
time_below = "4.5 V"
at_most = "5.5s"

[[expect]]
time_above = "4.5 V"
over = ["0s", "2s"]
at_least = "2s"

[[expect]]
outliers = ["4.75 V", "5.25 V"]
at_most = 0
"""


async def test_how_long_a_sag_lasted_and_how_many_samples_left_the_band(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The rail ramps from 5 V to 3 V over 2 s and back: it is below 4.5 V from 2.5 s to
    7.5 s. Six one-second samples (2 s to 8 s) hold readings outside 4.75..5.25 V."""
    below, above, outliers = (await record_of(SAG, tmp_path)).expectations
    assert below.state == "pass" and isinstance(below.measured, float)
    assert 4.8 <= below.measured <= 5.2
    assert "by the samples' extremes" in below.detail
    assert above.state == "pass" and above.measured == pytest.approx(2.0, abs=0.01)
    assert outliers.state == "fail" and outliers.measured == 6
    assert outliers.detail.startswith("6 of ")


async def test_the_time_a_reset_took_is_uncovered_not_bridged(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A reset at 4.5 s takes the pending sample (4 s to 4.5 s) with it: the energy over the
    first 9.5 s is that of the 9 s the samples cover, and the table says half a second was
    not."""
    text = (
        RAIL
        + '[[step]]\nat = "4.5s"\nreset = true\n'
        + '[[expect]]\nmeasure = "energy"\nover = ["0s", "9.5s"]\nabove = 0\n'
    )
    (energy,) = (await record_of(text, tmp_path)).expectations
    assert isinstance(energy.measured, float)
    assert energy.measured == pytest.approx(1.25 * 9.0, rel=0.01)
    assert "(0.5 s of the window uncovered by samples)" in energy.detail
