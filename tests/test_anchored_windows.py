"""Windows anchored to what happens in a run: a step, an alert, a reset, the run's end, with
offsets; one whose anchor never happened fails saying so."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import trio

from harness.cli import main
from harness.errors import UserError
from harness.link import Sample
from harness.runner.context import RunOptions
from harness.runner.run import run_scenario
from harness.scenario import anchors
from harness.scenario.expect import evaluator
from harness.scenario.expect.base import HELD_PRUNE
from harness.scenario.load import parse

SAG = """\
[scenario]
name = "sag"
duration = "14s"

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "4s"
volts = 5.0
[[supply]]
at = "5s"
volts = 3.0
[[supply]]
at = "8s"
volts = 3.0
[[supply]]
at = "9s"
volts = 5.0

[[step]]
name = "arm"
at = "1s"
send = { cmd = "set_threshold", uv = 4.5 }

[[step]]
name = "mark"
at = "10s"
send = { cmd = "ping" }
"""


@pytest.mark.parametrize(
    ("text", "kind", "arg", "offset"),
    [
        ("5s", "time", None, 5.0),
        ("end - 1s", "end", None, -1.0),
        ("step sag + 2s", "step", "sag", 2.0),
        ("step link faults", "step", "link faults", 0.0),
        ("alert uv", "alert", "uv", 0.0),
        ("reset 2 - 500ms", "reset", 2, -0.5),
        ("boot", "boot", 1, 0.0),
        ("boot 2 + 1s", "boot", 2, 1.0),
        ("log 'calibration (\\d+)' + 1s", "log", "calibration (\\d+)", 1.0),
    ],
)
def test_an_anchor_reads_its_moment_and_offset(
    text: str, kind: str, arg: object, offset: float
) -> None:
    a = anchors.parse(text)
    shown = a.arg.pattern if kind == "log" else a.arg
    assert (a.kind, shown, a.offset) == (kind, arg, pytest.approx(offset))


def test_a_window_anchored_to_steps_and_the_end_is_fixed_when_the_file_is_read() -> None:
    text = (
        SAG
        + '[[expect]]\nmeasure = "v"\nstat = "avg"\nover = ["step arm + 1s", "step mark"]\n'
        + 'above = "2 V"\n'
        + '[[expect]]\nmeasure = "v"\nstat = "avg"\nfrom = "end - 3s"\nabove = "4.9 V"\n'
    )
    first, second = parse(text, Path("t.toml")).expects
    assert first.check.window == (2.0, 10.0)  # type: ignore[attr-defined]
    assert second.check.window == (11.0, 14.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            'from = "step sga"',
            't.toml:35: expect[1].from: no step named "sga" (did you mean "sag"?); steps: arm, sag',
        ),
        (
            'over = ["alert xx", "end"]',
            't.toml:35: expect[1].over[1]: "alert xx": no alert "xx"; alerts: uv, op, oc, ovf, i2c',
        ),
        (
            "from = \"log 'ready('\"",
            "t.toml:35: expect[1].from: \"log 'ready('\": not a regular expression: missing ), "
            "unterminated subpattern at position 5",
        ),
        ('from = "soon"', 't.toml:35: expect[1].from: "soon": ' + anchors.SYNTAX),
        (
            'over = ["end - 1s", "end - 2s"]',
            "t.toml:35: expect[1].over: ends (12s) before it starts (13s)",
        ),
        (
            'over = ["6s", "7s"]\nfrom = "5s"',
            't.toml:36: expect[1].from: goes instead of "over", not with it',
        ),
    ],
)
def test_an_anchor_that_cannot_be_is_one_line(entry: str, error: str) -> None:
    text = (
        SAG.replace('name = "mark"', 'name = "sag"')
        + '[[expect]]\nmeasure = "v"\nstat = "min"\nbelow = 4\n'
        + entry
        + "\n"
    )
    with pytest.raises(UserError) as err:
        parse(text, Path("t.toml"))
    assert str(err.value) == error


def test_an_anchor_naming_no_step_exits_2_through_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "anchor.toml"
    path.write_text(SAG + '[[expect]]\nalert = "uv"\nfrom = "step sag"\n')
    for argv in (["check", str(path)], ["run", str(path), "--fast", "--no-view"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == 'anchor.toml:33: expect[1].from: no step named "sag"; steps: arm, mark\n'


async def test_windows_follow_the_alert_and_an_anchor_never_seen_fails(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The rail falls below 4.5 V at 4.75 s: the uv alert's first sample starts at 4 s. The
    second after it holds the sag's bottom; the two seconds before the end are back at 5 V."""
    text = (
        SAG
        + '[[expect]]\nname = "bottom"\nmeasure = "v"\nstat = "min"\n'
        + 'over = ["alert uv + 1s", "alert uv + 2s"]\nbelow = "3.1 V"\n'
        + '[[expect]]\nname = "tail"\nmeasure = "v"\nstat = "min"\nfrom = "end - 2s"\n'
        + 'above = "4.9 V"\n'
        + '[[expect]]\nname = "never"\nmeasure = "v"\nstat = "min"\nfrom = "alert oc"\n'
        + 'below = "6 V"\n'
    )
    result = await run_scenario(
        parse(text, tmp_path / "sag.toml"), RunOptions(fast=True, out=io.StringIO())
    )
    bottom, tail, never = result.record.expectations
    assert bottom.label == "bottom" and bottom.state == "pass"
    assert isinstance(bottom.measured, float) and bottom.measured < 3.1
    assert tail.state == "pass"
    assert (never.state, never.detail) == ("fail", '"alert oc" never happened')
    assert result.record.verdict == "fail"


RESET = """\
[scenario]
name = "reset"
duration = "10s"

[[step]]
at = "4s"
reset = true

[[expect]]
name = "after the reset"
measure = "energy"
over = ["reset", "reset + 4s"]
between = ["1.3 mWh", "1.5 mWh"]
[[expect]]
name = "the second boot"
measure = "energy"
over = ["boot 2", "boot 2 + 4s"]
between = ["1.3 mWh", "1.5 mWh"]

[[expect]]
name = "the first boot"
measure = "energy"
over = ["boot", "boot + 3s"]
between = ["0.95 mWh", "1.15 mWh"]
"""


async def test_a_window_from_the_reset_the_host_saw(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """4 s of 5 V x 0.25 A after the new boot: 5 J, 1.3889 mWh; the first 3 s of the first
    boot (its hello at 0 s): 3.75 J."""
    result = await run_scenario(
        parse(RESET, tmp_path / "reset.toml"), RunOptions(fast=True, out=io.StringIO())
    )
    for e, joules in zip(result.record.expectations, (5.0, 5.0, 3.75), strict=True):
        assert e.state == "pass", e
        assert isinstance(e.measured, float) and e.measured == pytest.approx(joules, rel=0.03)
    assert [e.label for e in result.record.expectations] == [
        "after the reset",
        "the second boot",
        "the first boot",
    ]


def test_an_anchored_expectation_holds_only_what_can_still_count() -> None:
    """Until its start anchor is seen, an expectation holds the samples that could still fall
    in its window: a day of one-second samples before the line leaves a few hundred held."""
    text = (
        '[scenario]\nname = "t"\nduration = "2d"\n[[expect]]\nmeasure = "v"\nstat = "max"\n'
        'from = "log \'go\'"\nto = "log \'go\' + 10s"\nbelow = "5.5 V"\n'
    )
    (e,) = parse(text, Path("t.toml")).expects
    ev = evaluator(e, 2 * 86400.0)

    def sample(seq: int, volts: float) -> Sample:
        return Sample(seq, 1, seq * 1000, 1000, volts, 0.25, 1.25, volts, volts, 0.25, 4, "ok")

    for seq in range(1, 86400):
        ev.on_sample(sample(seq, 9.0), seq - 1.0, float(seq))  # over the limit, but before
    assert len(ev.held) < 2 * HELD_PRUNE  # type: ignore[attr-defined]
    ev.on_event("log", 86400.0, {"text": "go now"})
    for seq in range(86400, 86420):
        ev.on_sample(sample(seq, 5.0), seq - 1.0, float(seq))
    assert ev.outcome.state == "pass" and ev.outcome.measured == 5.0
