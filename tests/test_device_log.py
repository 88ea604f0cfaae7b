"""The device's log: the mock prints the firmware's `#` lines, the run records them, an
expectation judges them (a line, its absence, a capture against a limit) and a step waits for
one, with a timeout that fails the run naming the step."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import trio

from harness.cli import main
from harness.errors import UserError
from harness.link import DeviceLink, HostLink, LogLine
from harness.runner.context import RunOptions
from harness.runner.run import run_scenario
from harness.scenario.load import parse
from harness.targets.mock.ina219 import READY_LOG

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware" / "src" / "main.cpp"


def test_the_mock_prints_the_firmware_s_boot_line() -> None:
    (ready,) = re.findall(r'kLogReady\[\] PROGMEM = "(.*)\\n";', FIRMWARE.read_text())
    assert ready == READY_LOG


def test_two_lines_in_one_read_are_two_whole_lines() -> None:
    """A read that holds a log line, then the hello and another log line, gives each line
    whole: no match is missed because two lines came at once."""
    device = DeviceLink(now=0.0, boot=3)
    device.log("# first line")
    data = device.data_to_send()
    assert data.startswith(b"# first line\n") and data.count(b"\n") == 2  # and the hello
    host = HostLink(now=0.0)
    events = host.feed(data + b"# ina219: ready at 0x40\n", 0.0)
    logs = [e.text for e in events if isinstance(e, LogLine)]
    assert logs == ["first line", "ina219: ready at 0x40"]


HEAD = """\
[scenario]
name = "log"
duration = "10s"

[[step]]
name = "kick"
at = "3s"
reset = true
"""

RUN = (
    HEAD
    + """
[[step]]
name = "boot line"
wait_log = "ina219: ready"
timeout = "2s"

[[expect]]
name = "calibration"
log = "calibration (\\\\d+)"
value = 4096

[[expect]]
name = "calibration too low"
log = "calibration (\\\\d+)"
from = "reset"
above = 5000

[[expect]]
name = "no sensor trouble"
log = "no answer"
absent = true

[[expect]]
name = "after the boot line"
measure = "v"
stat = "avg"
from = "log 'ready'"
to = "log 'ready' + 2s"
above = "4.9 V"
"""
)


async def test_log_lines_are_judged_recorded_and_waited_for(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    result = await run_scenario(
        parse(RUN, tmp_path / "log.toml"), RunOptions(fast=True, out=io.StringIO())
    )
    rec = result.record
    states = {e.label: (e.state, e.measured) for e in rec.expectations}
    assert states["calibration"] == ("pass", 4096.0)
    assert states["calibration too low"] == ("fail", 4096.0)
    assert states["no sensor trouble"] == ("pass", None)
    assert states["after the boot line"][0] == "pass"
    waited = "step[2] boot line: log line /ina219: ready/ within 2s"
    assert states[waited] == ("pass", 3.0)
    assert [(line.at, line.text) for line in rec.device.log] == [
        (0.0, READY_LOG[2:]),
        (3.0, READY_LOG[2:]),
    ]


def test_a_timeout_fails_the_run_naming_the_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "late.toml"
    path.write_text(
        HEAD
        + '[[step]]\nat = "5s"\nwait_log = "never said"\ntimeout = "1.5s"\n'
        + '[[step]]\nat = "5.2s"\nsend = { cmd = "ping" }\n'
    )
    out = tmp_path / "r.json"
    assert main(["run", str(path), "--fast", "--no-view", "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "     6.5 s  step[2] wait_log: no log line matching /never said/ within 1.5s" in text
    rec = json.loads(out.read_text())
    (ping,) = rec["commands"]
    assert ping["issued"] == 6.5  # the step after the wait waited for it to time out
    (e,) = rec["expectations"]
    assert e["label"] == "step[2] wait_log: log line /never said/ within 1.5s"
    assert (e["state"], e["detail"]) == ("fail", "no line matching /never said/ in the window")


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            '[[expect]]\nlog = "calibration (\\\\d+"',
            'log.toml:11: expect[1].log: "calibration (\\d+" is not a regular expression: '
            "missing ), unterminated subpattern at position 12",
        ),
        (
            '[[step]]\nwait_log = "ready("\ntimeout = "1s"',
            'log.toml:11: step[2].wait_log: "ready(" is not a regular expression: missing ), '
            "unterminated subpattern at position 5",
        ),
        (
            '[[step]]\nwait_log = "ready"',
            'log.toml:10: step[2]: missing "timeout" (how long it waits for the line, e.g. "5s")',
        ),
        (
            '[[step]]\nreset = true\ntimeout = "1s"',
            "log.toml:12: step[2].timeout: only a step that waits (wait_log) has a timeout",
        ),
        (
            '[[expect]]\nlog = "calibration (\\\\d+)"\nbelow = "3 V"\nabove = "1 mA"',
            'log.toml:13: expect[1].above: "1 mA" is a current, the capture is volts',
        ),
        (
            '[[expect]]\nlog = "x"\nabsent = true\nvalue = 3',
            "log.toml:12: expect[1].absent: an absent line has no capture to judge",
        ),
    ],
)
def test_a_bad_log_key_is_one_line(entry: str, error: str) -> None:
    with pytest.raises(UserError) as err:
        parse(HEAD + "\n" + entry + "\n", Path("log.toml"))
    assert str(err.value) == error


def test_a_bad_regular_expression_exits_2_through_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "re.toml"
    path.write_text(HEAD + '\n[[expect]]\nlog = "ready("\n')
    for argv in (["check", str(path)], ["run", str(path), "--fast", "--no-view"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == (
            're.toml:11: expect[1].log: "ready(" is not a regular expression: missing ), '
            "unterminated subpattern at position 5\n"
        )
