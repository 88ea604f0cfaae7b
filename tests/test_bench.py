"""`harness bench`: the report's shape (each goal with target, measured, met) and the groups
that run in seconds. Figures are never asserted against time: the bench measures, tests don't."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.bench.devices import Board, Client, bench_devices
from harness.bench.faults import bench_faults
from harness.bench.goals import Goal, Group, Report, machine
from harness.bench.ingest import RUNS, bench_ingest, frames, line_frames_per_s


def test_a_goal_is_met_by_its_operator() -> None:
    assert Goal("g", "more", 21, 20, ">=").met
    assert not Goal("g", "more", 19.9, 20, ">=").met
    assert Goal("g", "less", 20, 20, "<=").met
    assert not Goal("g", "less", 20.1, 20, "<=").met
    assert Goal("g", "none", 0, 0, "==").met
    assert not Goal("g", "none", 1, 0, "==").met


def test_report_json_gives_every_goal_its_target_measured_value_and_verdict() -> None:
    ok, bad = Group("ingest"), Group("firmware")
    ok.goal("x a 2 Mbaud line", 25.0, ">=", 20, "x")
    ok.figures["frames"] = 1000
    bad.goal("Uno flash", 17_000, "<=", 16_128, "B")
    skipped = Group("sim")
    skipped.skipped = "no AVR toolchain"
    report = Report(quick=True, machine=machine(), groups=[ok, bad, skipped])
    data = json.loads(report.json())
    assert data["met"] is False
    assert data["goals"][0] == {
        "group": "ingest",
        "name": "x a 2 Mbaud line",
        "target": ">= 20 x",
        "target_value": 20,
        "measured": 25.0,
        "unit": "x",
        "met": True,
    }
    assert data["goals"][1]["met"] is False
    assert data["figures"] == {"ingest": {"frames": 1000}}
    assert data["skipped"] == {"sim": "no AVR toolchain"}
    assert data["machine"]["cores"] >= 1
    table = report.table()
    assert "NOT MET: firmware: Uno flash" in table and "sim: skipped (no AVR toolchain)" in table
    broken = Group("live")
    broken.failed = "RuntimeError: the monitor exited with 2"
    report = Report(quick=True, machine=machine(), groups=[ok, broken])
    assert not report.met  # a group that could not measure is not a met goal
    assert json.loads(report.json())["failed"] == {
        "live": "RuntimeError: the monitor exited with 2"
    }
    assert "NOT MET: live: failed" in report.table()


def test_line_rates_are_bytes_at_ten_bits_over_the_frame() -> None:
    assert line_frames_per_s(2_000_000, 100) == 2000
    assert line_frames_per_s(115_200, 144) == 80


def test_ingest_takes_every_frame_through_the_store_once(tmp_path: Path) -> None:
    group = Group("ingest")
    bench_ingest(group, tmp_path, n=2000, naive_n=50)
    assert group.figures["frames"] == 2000
    # Every sample went to the page or was counted as missed by it (harness.viewer.hub).
    assert group.figures["viewer_samples"] + group.figures["viewer_missed"] == 2000
    assert len(group.figures["ingest_runs_frames_per_s"]) == RUNS
    assert [g.name for g in group.goals] == ["x a 2 Mbaud line", "x the naive loop"]
    assert len(frames(3).splitlines()) == 4  # a hello, then the samples


def test_fault_goals_hold_on_the_mock(tmp_path: Path) -> None:
    group = Group("faults")
    bench_faults(group, tmp_path, seconds=20)
    goals = {g.name: g for g in group.goals}
    assert goals["samples lost"].measured == 0
    assert goals["samples duplicated"].measured == 0
    assert goals["commands not executed once"].measured == 0
    assert goals["goodput lossy / clean"].met
    assert group.figures["commands"] == 18 + 1  # the pings and the set_interval
    assert group.figures["saturated_lost"] == 0


@pytest.mark.slow
def test_devices_reports_each_n_with_every_sample_stored_once(tmp_path: Path) -> None:
    group = Group("devices")
    bench_devices(group, tmp_path, counts=(2,), seconds=3)
    figures = group.figures
    assert figures["n2_lost_dup"] == [0, 0]
    acked, stored = figures["n2_acked_stored"]
    assert acked > 0 and stored >= acked  # each acknowledged sample is in the log, once
    assert figures["n2_frames_per_s"] > 0
    assert figures["n2_client_msgs_missed"][0] > 0  # the page got sample messages
    fill_min, fill_mean = figures["n2_fill_min_mean"]
    assert fill_min <= fill_mean <= 1.01  # the boards never write faster than 115,200 baud carries
    assert {"n2_p50_p99_ms", "n2_rss_mb", "n2_harness_cpu_pct", "largest_n_met"} <= set(figures)
    assert [g.name for g in group.goals] == [
        "2 devices: samples lost",
        "2 devices: samples duplicated",
        "2 devices: frame -> browser p99",
        "2 devices: harness RSS",
        "2 devices: least full line",
    ]


def test_the_devices_page_matches_each_sample_to_its_board_by_name_or_boot() -> None:
    one, two = Board("d01", 100, -1, -1, "pty1"), Board("d02", 101, -1, -1, "pty2")
    one.first_written[7] = 10.0
    two.first_written[7] = 10.5
    page = Client([one, two])
    page.window = (9.0, 11.0)
    # named by the message's device (the boot is then not needed to tell them apart)
    page.take(
        '{"type":"measurements","items":[{"device":"d02","missed":2,"data":{"seq":7,"boot":1}},'
        '{"missed":0,"data":{"v":5.0,"seq":7,"boot":100}}]}',  # no device: each boot is its own
        10.6,
    )
    page.take('{"type":"stats","data":{"seq":7,"boot":100}}', 10.5)  # not a sample
    assert (page.messages, page.missed) == (2, 2)
    assert [round(ms, 6) for ms in page.latencies] == [100.0, 600.0]
