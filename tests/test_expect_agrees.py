"""`agrees_with_supply`: the monitor's samples against the bench supply's readback."""

from __future__ import annotations

from pathlib import Path

from harness.link import Sample
from harness.scenario.expect import FAIL, PASS, PENDING, SKIPPED, RunFacts, evaluator
from harness.scenario.expect.base import Evaluator
from harness.scenario.load import parse

HEAD = """\
[scenario]
name = "t"
duration = "20s"

[[expect]]
"""

FACTS = RunFacts({}, 0, {})


def judge(entry: str) -> Evaluator:
    (e,) = parse(HEAD + entry + "\n", Path("t.toml")).expects
    return evaluator(e)


def sample(seq: int, v: float, vmin: float, vmax: float, a: float = 0.25, amax: float = 0.25):
    return Sample(seq, 1, seq * 1000, 1000, v, a, v * a, vmin, vmax, amax, 4, "ok")


def test_readbacks_inside_the_samples_range_agree_also_along_a_ramp() -> None:
    ev = judge('agrees_with_supply = "v"\ntolerance = 0.05')
    ev.on_sample(sample(1, 5.0, 4.99, 5.01), 0.0, 1.0)
    ev.on_readback(0.5, 5.03, 0.25)  # covered by the last sample: judged at once
    ev.on_readback(1.4, 4.2, 0.25)  # before its sample: held until it comes
    ev.on_sample(sample(2, 4.5, 4.0, 5.0), 1.0, 2.0)  # a ramp from 5 V to 4 V
    ev.on_readback(2.5, 3.97, 0.25)
    ev.on_sample(sample(3, 3.9, 3.8, 4.0), 2.0, 3.0)
    assert ev.outcome.state == PENDING
    ev.finish(FACTS)
    assert ev.outcome.state == PASS
    assert ev.outcome.detail == "3 readbacks agree, the farthest 20 mV apart"
    assert ev.outcome.measured == 0.02


def test_a_readback_beyond_the_tolerance_fails_naming_both_values() -> None:
    ev = judge('agrees_with_supply = "v"\ntolerance = 0.05')
    ev.on_readback(0.5, 5.2, 0.25)
    ev.on_sample(sample(1, 5.0, 4.99, 5.01), 0.0, 1.0)
    assert ev.outcome.state == FAIL
    assert ev.outcome.detail == (
        "at 0.5 s the supply read 5.2 V, the monitor 4.99..5.01 V (off by 0.19 V, tolerance 0.05 V)"
    )


def test_amps_are_compared_with_a_band_about_the_mean() -> None:
    ev = judge('agrees_with_supply = "a"\ntolerance = "5 mA"')
    ev.on_sample(sample(1, 5.0, 5.0, 5.0, a=0.20, amax=0.22), 0.0, 1.0)
    ev.on_readback(0.3, 5.0, 0.185)  # 0.20 - (0.22 - 0.20) - 0.005 = 0.175 .. 0.225
    assert ev.outcome.state == PENDING
    ev.on_readback(0.6, 5.0, 0.17)
    assert ev.outcome.state == FAIL and "0.17 A" in ev.outcome.detail


def test_only_readbacks_in_the_window_count_and_a_sample_past_it_settles() -> None:
    ev = judge('agrees_with_supply = "v"\ntolerance = 0.05\nover = ["1s", "2s"]')
    ev.on_sample(sample(1, 5.0, 5.0, 5.0), 0.0, 1.0)
    ev.on_readback(0.5, 9.0, 0.0)  # before the window: not judged
    ev.on_sample(sample(2, 5.0, 5.0, 5.0), 1.0, 2.0)
    ev.on_readback(1.5, 5.0, 0.25)
    ev.on_sample(sample(3, 5.0, 5.0, 5.0), 2.1, 3.0)
    assert ev.outcome.state == PASS and ev.outcome.detail.startswith("1 readbacks agree")


def test_a_run_without_readback_does_not_pass() -> None:
    ev = judge('agrees_with_supply = "v"\ntolerance = 0.05')
    ev.on_sample(sample(1, 5.0, 5.0, 5.0), 0.0, 1.0)
    ev.finish(FACTS)
    assert ev.outcome.state == FAIL
    assert ev.outcome.detail == (
        "no supply readback to compare: the run drove no supply that reads back (give --supply "
        "or --bench; a manual supply has none)"
    )


def test_readbacks_no_sample_covers_are_not_judged_and_do_not_pass() -> None:
    ev = judge('agrees_with_supply = "v"\ntolerance = 0.05')
    ev.on_readback(0.5, 1.0, 0.0)  # the samples of this time were lost
    ev.on_sample(sample(2, 5.0, 5.0, 5.0), 1.0, 2.0)
    assert ev.outcome.state == PENDING
    ev.finish(FACTS)
    assert ev.outcome.state == FAIL
    assert ev.outcome.detail == "no readback in the window was covered by a sample"


def test_a_run_stopped_before_the_window_ends_skips_it() -> None:
    ev = judge('agrees_with_supply = "v"\ntolerance = 0.05\nover = ["1s", "10s"]')
    why = ev.unreached(RunFacts({}, 0, {}, stopped_at=4.0))
    assert why is not None
    ev.skip(why)
    assert ev.outcome.state == SKIPPED
