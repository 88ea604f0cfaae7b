"""Scenario files: what they mean, and one clear line for each way they can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main, shipped_scenarios
from harness.scenario.expect.acked import AckExpect
from harness.scenario.load import load
from harness.scenario.model import Outage, Send, SetLink
from harness.scenario.units import parse_duration

GOOD = """\
[scenario]
name = "t"
duration = "20s"
seed = 3

[link]
drop = 0.05
[link.to_device]
drop = 0.2

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "6s"
volts = 3.0

[[step]]
at = "1s"
send = { cmd = "set_threshold", uv = 4.5 }
ack_within = "500ms"

[[step]]
name = "cut"
at = "2s"
outage = "3s"

[[step]]
at = "9s"
link = { corrupt = 0.1 }

[[expect]]
alert = "uv"
within = ["5s", "7s"]

[[expect]]
recovered_within = "4s"
after = "cut"
"""


def write(tmp_path: Path, text: str, name: str = "brownout.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_durations() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2s") == 2.0
    assert parse_duration("1m") == 60.0
    assert parse_duration("1.5h") == 5400.0
    assert parse_duration(3) == 3.0
    for bad in ("fast", "-1s", "1 parsec", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_a_good_file_means_what_it_says(tmp_path: Path) -> None:
    sc = load(write(tmp_path, GOOD))
    assert (sc.name, sc.duration, sc.seed) == ("t", 20.0, 3)
    assert sc.link.to_host.drop == 0.05 and sc.link.to_device.drop == 0.2
    assert sc.supply.at(3.0) == (4.0, 0.25)  # halfway down the ramp, amps carried over
    send, outage, setlink = (s.action for s in sc.steps)
    assert isinstance(send, Send) and send.args == {"uv": 4.5}
    assert isinstance(outage, Outage) and outage.duration == 3.0
    assert isinstance(setlink, SetLink)
    assert setlink.faults.to_host.corrupt == 0.1 and setlink.faults.to_host.drop == 0.05
    assert sc.needs == ("supply",)
    (ack,) = [e.check for e in sc.expects if isinstance(e.check, AckExpect)]
    assert ack.within == 0.5 and ack.step == 1


def test_parity_says_which_verdict_may_differ_between_mock_and_sim(tmp_path: Path) -> None:
    why = "the sim's INA219 has no noise"
    text = GOOD.replace("seed = 3", f'seed = 3\nparity = {{ "uv alert within 5s..7s" = "{why}" }}')
    assert load(write(tmp_path, text)).parity == {"uv alert within 5s..7s": why}
    assert load(write(tmp_path, GOOD)).parity == {}


def test_repeat_expands_a_step(tmp_path: Path) -> None:
    text = GOOD.replace('ack_within = "500ms"', 'repeat = 3\nevery = "1s"')
    sc = load(write(tmp_path, text))
    assert [s.at for s in sc.steps if isinstance(s.action, Send)] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
def test_shipped_scenarios_check(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


BAD = [
    # (what is wrong, how to break GOOD, expected message after "brownout.toml")
    (
        "misspelt command",
        ('cmd = "set_threshold", uv = 4.5', 'cmd = "set_thresold", uv = 4.5'),
        ':21: step[1].send.cmd: unknown command "set_thresold" (did you mean "set_threshold"?)',
    ),
    (
        "argument out of range",
        ("uv = 4.5 }", "uv = 99.0 }"),
        ":21: step[1].send.uv: 99.0 is out of range for set_threshold (0..32.768)",
    ),
    (
        "argument of another command",
        ("uv = 4.5 }", "value = 4 }"),
        ":21: step[1].send.value: set_threshold takes uv, oc, op",
    ),
    (
        "bad duration",
        ('duration = "20s"', 'duration = "twenty"'),
        ":3: scenario.duration: expected a duration",
    ),
    ("missing name", ('name = "t"\n', ""), ':1: scenario: missing "name"'),
    ("unknown section", ("[link]\n", "[lnk]\n"), ':6: lnk: unknown section (did you mean "link"?)'),
    (
        "unknown link knob",
        ("drop = 0.05\n[link.to_device]", "drops = 0.05\n[link.to_device]"),
        ':7: link.drops: unknown key (did you mean "drop"?)',
    ),
    (
        "probability above 1",
        ("drop = 0.2", "drop = 2"),
        ":9: link.to_device.drop: 2 is outside 0..1",
    ),
    (
        "supply out of order",
        ('at = "6s"\nvolts = 3.0', 'at = "-1s"\nvolts = 3.0'),
        ":16: supply[2].at: expected a duration",
    ),
    (
        "volts out of range",
        ("volts = 3.0", "volts = 50.0"),
        ":17: supply[2].volts: 50 V is outside 0..32.768 V",
    ),
    (
        "step with two actions",
        ('outage = "3s"', 'outage = "3s"\nreset = true'),
        ":24: step[2]: a step does exactly one of",
    ),
    (
        "ack_within on a non-send step",
        ('outage = "3s"', 'outage = "3s"\nack_within = "1s"'),
        ":28: step[2].ack_within: only a step that sends a command",
    ),
    (
        "step after the end",
        ('at = "9s"', 'at = "29s"'),
        ":30: step[3].at: runs until 29s, after the scenario ends (20s)",
    ),
    (
        "unknown alert",
        ('alert = "uv"', 'alert = "uvv"'),
        ':34: expect[1].alert: unknown value "uvv" (did you mean "uv"?)',
    ),
    (
        "window backwards",
        ('within = ["5s", "7s"]', 'within = ["7s", "5s"]'),
        ":35: expect[1].within: ends (5s) before it starts (7s)",
    ),
    (
        "recovery after no such step",
        ('after = "cut"', 'after = "cutt"'),
        ':39: expect[2].after: no fault step named "cutt" (did you mean "cut"?)',
    ),
    (
        "expectation with two kinds",
        ('recovered_within = "4s"', 'recovered_within = "4s"\nresets = 1'),
        ":37: expect[2]: an expectation is exactly one of",
    ),
    (
        "bad TOML",
        ('name = "t"', "name = t"),
        ": not valid TOML: Invalid value (at line 2, column 8)",
    ),
    (
        "duration not a number",
        ('duration = "20s"', "duration = nan"),
        ":3: scenario.duration: a duration is a finite number of seconds, not nan",
    ),
    (
        "recovery after an ambiguous name",
        ('after = "cut"', 'after = "link faults"\n[[step]]\nat = "12s"\nlink = { drop = 0 }'),
        ':39: expect[2].after: several fault steps are named "link faults"',
    ),
    (
        "agreement without a tolerance",
        ('recovered_within = "4s"\nafter = "cut"', 'agrees_with_supply = "v"'),
        ':37: expect[2]: missing "tolerance" (how far apart in V still agrees)',
    ),
    (
        "agreement of an unknown measure",
        ('recovered_within = "4s"\nafter = "cut"', 'agrees_with_supply = "w"\ntolerance = 0.1'),
        ':38: expect[2].agrees_with_supply: unknown value "w"; expected one of: v, a',
    ),
    (
        "agreement with a tolerance in the wrong unit",
        ('recovered_within = "4s"\nafter = "cut"', 'agrees_with_supply = "a"\ntolerance = "5mV"'),
        ':39: expect[2].tolerance: "5mV" is a voltage, a is amps',
    ),
    (
        "agreement over a window past the end",
        (
            'recovered_within = "4s"\nafter = "cut"',
            'agrees_with_supply = "v"\ntolerance = 0.1\nover = ["1s", "30s"]',
        ),
        ":40: expect[2].over: ",
    ),
    (
        "seed not an integer",
        ("seed = 3", 'seed = "three"'),
        ':4: scenario.seed: expected an integer, got "three"',
    ),
    (
        "parity for an expectation the file does not have",
        ("seed = 3", 'seed = 3\nparity = { "uv alert within 5s..8s" = "the sim is slower" }'),
        ':5: scenario.parity.uv alert within 5s..8s: no expectation has this label (did you mean "uv alert within 5s..7s"?)',
    ),
    (
        "parity without a reason",
        ("seed = 3", 'seed = 3\nparity = { "uv alert within 5s..7s" = " " }'),
        ":5: scenario.parity.uv alert within 5s..7s: say why the mock and the sim differ",
    ),
]


@pytest.mark.parametrize(("what", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_malformed_scenario_is_one_line_naming_the_place(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    what: str,
    change: tuple[str, str],
    message: str,
) -> None:
    old, new = change
    assert old in GOOD, what
    path = write(tmp_path, GOOD.replace(old, new, 1))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("brownout.toml" + message), err


def test_missing_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no/such/file.toml", "--fast"]) == 2
    err = capsys.readouterr().err
    assert err == "no/such/file.toml: no such scenario file (harness list shows the shipped ones)\n"


def test_list_shows_shipped_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "brownout",
        "clean",
        "lossy-link",
        "burst-loss",
        "unplug",
        "overcurrent",
        "reset",
        "command-storm",
        "battery-budget",
    ):
        assert name in out
