"""Safety limits: a profile beyond the bench's limits is refused naming its point and the
limit; a bench file's problems are one line each, naming the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.scenario.load import parse
from harness.scenario.profile import Profile, SupplyPoint
from harness.supplies.bench import load_bench, parse_bench
from harness.supplies.limits import Limits, check_profile, profile_limits
from harness.supplies.spec import SupplySpec

BENCH = Limits(max_volts=5.5, max_amps=0.5, max_slew=10.0)


def profile(*points: tuple[float, float, float]) -> Profile:
    return Profile([SupplyPoint(*p) for p in points])


def test_a_point_above_max_volts_is_refused_naming_the_point_and_the_limit() -> None:
    p = profile((0, 5.0, 0.1), (4, 5.0, 0.1), (8, 6.5, 0.1))
    err = check_profile(p, Limits(max_volts=5.5, max_amps=0.5))
    assert str(err) == "supply[3] at 8s: 6.5 V is above the bench's max_volts 5.5 V"


def test_the_scenario_file_and_its_numbering_are_named() -> None:
    text = """
[scenario]
name = "too high"
duration = "10s"

[[supply]]
at = 0
volts = 5.0
amps = 0.1

[[supply]]
at = "8s"
volts = 6.5
"""
    scenario = parse(text, Path("too_high.toml"))
    err = check_profile(scenario.supply, BENCH, where=scenario.path.name)
    assert str(err) == "too_high.toml: supply[2] at 8s: 6.5 V is above the bench's max_volts 5.5 V"


def test_amps_above_max_amps_are_refused() -> None:
    err = check_profile(profile((0, 5.0, 0.1), (2, 5.0, 0.8)), BENCH)
    assert str(err) == (
        "supply[2] at 2s: 0.8 A is above the bench's max_amps 0.5 A (the supply's current limit)"
    )


def test_a_ramp_faster_than_max_slew_is_refused_with_the_time_it_needs() -> None:
    err = check_profile(profile((0, 5.0, 0.1), (1, 5.0, 0.1), (1.1, 3.0, 0.1)), BENCH)
    assert str(err) == (
        "supply[3] at 1.1s: the ramp from 5 V to 3 V in 100ms (20 V/s) is faster than the "
        "bench's max_slew 10 V/s (give it at least 200ms)"
    )


def test_an_instant_step_is_refused_under_a_slew_limit() -> None:
    err = check_profile(profile((0, 5.0, 0.1), (4, 5.0, 0.1), (4, 3.0, 0.1)), BENCH)
    assert str(err) == (
        "supply[3] at 4s: an instant step from 5 V to 3 V is faster than the bench's max_slew "
        "10 V/s (ramp it over at least 200ms)"
    )


def test_a_profile_within_the_limits_passes() -> None:
    assert check_profile(profile((0, 5.0, 0.1), (1, 5.0, 0.1), (1.5, 3.0, 0.5)), BENCH) is None
    steps = profile((0, 5.0, 0.1), (4, 3.0, 0.1), (4, 5.0, 0.1))
    assert check_profile(steps, Limits(max_volts=5.5, max_amps=0.5)) is None


def test_without_a_bench_the_limits_are_the_profiles_own_and_say_so() -> None:
    p = profile((0, 5.0, 0.1), (4, 3.0, 0.25), (4, 5.2, -0.3))
    limits = profile_limits(p)
    assert (limits.max_volts, limits.max_amps, limits.max_slew) == (5.2, 0.3, None)
    assert check_profile(p, limits) is None
    assert limits.describe() == (
        "limits the profile's own maxima (no bench limits): max_volts 5.2 V, max_amps 0.3 A; "
        "at the end the output goes off"
    )
    assert BENCH.describe().startswith("limits from the bench file: max_volts 5.5 V")


# --- the bench file ------------------------------------------------------------------------

GOOD = """\
[supply]
driver = "scpi"
resource = "TCPIP::192.168.1.50::5025::SOCKET"
channel = 2
dialect = "rigol"
timeout = "1500ms"

[limits]
max_volts = 5.5
max_amps = 0.5
max_slew = 10
safe_volts = 3.3
"""


def test_a_bench_file() -> None:
    bench = parse_bench(GOOD, Path("bench.toml"))
    assert bench.supply == SupplySpec("scpi", "TCPIP::192.168.1.50::5025::SOCKET", 2, "rigol", 1.5)
    assert bench.limits == Limits(5.5, 0.5, 10.0, 3.3)


def test_limits_are_optional() -> None:
    bench = parse_bench('[supply]\ndriver = "korad"\nresource = "/dev/ttyUSB0"\n', Path("b.toml"))
    assert bench.supply == SupplySpec("korad", "/dev/ttyUSB0")
    assert bench.limits is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("max_volts = 5.5", 'max_volts = "5.5V"'),
            'bench.toml:9: limits.max_volts: expected a number, got "5.5V"',
        ),
        (
            ("max_amps = 0.5", "max_amps = 0"),
            "bench.toml:10: limits.max_amps: must be more than 0 A",
        ),
        (
            ("max_amps = 0.5\n", ""),
            'bench.toml:8: limits: missing "max_amps" (a bench\'s limits need max_volts and max_amps)',
        ),
        (
            ("safe_volts = 3.3", "safe_volts = 6"),
            "bench.toml:12: limits.safe_volts: 6 V is above max_volts 5.5 V",
        ),
        (
            ("max_slew = 10", "max_slw = 10"),
            'bench.toml:11: limits.max_slw: unknown key (did you mean "max_slew"?); expected one of: max_volts, max_amps, max_slew, safe_volts',
        ),
        (
            ('driver = "scpi"', 'driver = "visa"'),
            'bench.toml:2: supply.driver: unknown value "visa"; expected one of: scpi, korad, manual',
        ),
        (
            ('dialect = "rigol"', 'dialect = "rigl"'),
            'bench.toml:5: supply.dialect: unknown value "rigl" (did you mean "rigol"?); expected one of: keysight, rigol, siglent, scpi',
        ),
        (("channel = 2", "channel = 0"), "bench.toml:4: supply.channel: 0 is outside 1..99"),
        (
            ('timeout = "1500ms"', 'timeout = "2 weeks"'),
            'bench.toml:6: supply.timeout: expected a duration like "500ms", "2s" or "1m", got \'2 weeks\'',
        ),
        (
            ('resource = "TCPIP::192.168.1.50::5025::SOCKET"\n', ""),
            "bench.toml:2: supply.driver: scpi needs a resource: scpi:RESOURCE, e.g. scpi:TCPIP::192.168.1.50::5025::SOCKET",
        ),
        (
            ("[limits]", "[limit]"),
            'bench.toml:8: limit: unknown section (did you mean "limits"?); expected: supply, limits',
        ),
    ],
)
def test_each_problem_in_a_bench_file_is_one_line(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(UserError) as err:
        parse_bench(GOOD.replace(old, new), Path("bench.toml"))
    assert str(err.value) == message


def test_a_dialect_on_a_supply_that_is_not_scpi() -> None:
    text = '[supply]\ndriver = "korad"\nresource = "/dev/ttyUSB0"\ndialect = "rigol"\n'
    with pytest.raises(UserError) as err:
        parse_bench(text, Path("bench.toml"))
    assert (
        str(err.value)
        == "bench.toml:4: supply.dialect: only a scpi supply has a dialect (this is korad)"
    )


def test_a_manual_bench_takes_no_resource() -> None:
    with pytest.raises(UserError) as err:
        parse_bench('[supply]\ndriver = "manual"\nresource = "x"\n', Path("bench.toml"))
    assert str(err.value) == (
        "bench.toml:3: supply.resource: a manual supply takes no resource (write just: manual)"
    )


def test_bench_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nosuch.toml: no such bench file"):
        load_bench(tmp_path / "nosuch.toml")
    (tmp_path / "bad.toml").write_text("[supply\n")
    with pytest.raises(UserError, match=r"^bad.toml: not valid TOML: "):
        load_bench(tmp_path / "bad.toml")
    (tmp_path / "none.toml").write_text("[limits]\nmax_volts = 5\nmax_amps = 1\n")
    with pytest.raises(UserError, match=r"^none.toml: missing \[supply\]"):
        load_bench(tmp_path / "none.toml")
    (tmp_path / "good.toml").write_text(GOOD)
    assert load_bench(tmp_path / "good.toml").supply.channel == 2
