"""GET /metrics: during a real (wall-clock) run of the mock on a real Hypercorn, the answer
parses with prometheus-client's own parser and carries the link's counters with the run's
labels, moving as the run goes; under `harness view` it tells of the log; and the Grafana
dashboard in docs/ queries only metrics the viewer exports."""

from __future__ import annotations

import io
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from harness.runner.context import RunOptions
from harness.runner.observer import INJECTED_KINDS
from harness.runner.run import run_scenario
from harness.scenario.expect.states import STATES
from harness.scenario.load import parse
from harness.store.db import open_for_reading
from harness.store.recorder import recorder
from harness.viewer.app import create_app
from harness.viewer.live import LiveState
from harness.viewer.server import viewer

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "grafana" / "powerhil.json"

LOSSY = """\
[scenario]
name = "metrics-lossy"
duration = "5s"
seed = 11

[link]
drop = 0.05
corrupt = 0.03

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25

[[step]]
at = "0.2s"
send = { cmd = "set_interval", value = 50 }

[[expect]]
link = { lost = 0, duplicated = 0, commands_failed = 0 }
"""
RUN_LABELS = {"scenario": "metrics-lossy", "target": "mock"}
DEVICE_LABELS = {**RUN_LABELS, "device": "dut", "firmware": "1.0.0"}
"""A scenario without [[device]] runs one device, `dut`."""


def http_get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def samples_of(text: str) -> dict[str, list[Sample]]:
    """Every sample of an exposition by its name (counters' with their _total), parsed by
    prometheus-client's own parser."""
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def one(samples: dict[str, list[Sample]], name: str, **labels: str) -> Sample:
    found = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, samples[name])
    return found[0]


async def scrape_during_a_run(folder: Path) -> dict[str, Any]:
    scenario = parse(LOSSY, folder / "lossy.toml")
    db = folder / "h.db"
    started: dict[str, Any] = {}
    ready = trio.Event()
    scrapes: list[tuple[str, str]] = []

    def on_start(url: str, live: LiveState) -> None:
        started.update(url=url, live=live)
        ready.set()

    async def scraper() -> None:
        await ready.wait()
        obs = started["live"].ctx.observer
        for enough in (10, 30):  # two scrapes, samples apart
            while sum(b.delivered for b in obs.boots.values()) < enough:
                await trio.sleep(0.05)
            scrapes.append(await trio.to_thread.run_sync(http_get, started["url"] + "metrics"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(scraper)
        result = await run_scenario(
            scenario,
            RunOptions(out=io.StringIO()),
            (viewer("127.0.0.1:0", db, on_start=on_start), recorder(db)),
        )
    return {"scrapes": scrapes, "record": result.record, "db": db}


@pytest.fixture(scope="module")
def during_a_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return trio.run(scrape_during_a_run, tmp_path_factory.mktemp("metrics"))


def test_during_a_run_metrics_parse_and_carry_the_link_counters_with_the_runs_labels(
    during_a_run: dict[str, Any],
) -> None:
    (kind, first_text), (_, second_text) = during_a_run["scrapes"]
    assert kind.startswith("text/plain") and "version=" in kind
    first, second = samples_of(first_text), samples_of(second_text)
    for name in (
        "powerhil_samples_delivered_total",
        "powerhil_samples_lost",
        "powerhil_samples_duplicated_total",
        "powerhil_retransmissions_total",
        "powerhil_corrupt_frames_total",
        "powerhil_gaps_total",
        "powerhil_commands_sent_total",
        "powerhil_voltage_volts",
        "powerhil_energy_joules",
    ):
        assert one(second, name).labels == DEVICE_LABELS, name
    for name in ("powerhil_store_rows_written_total", "powerhil_store_backlog_rows"):
        assert one(second, name).labels == RUN_LABELS, name
    # The counters move with the run, and never past what the run's record ends with.
    record = during_a_run["record"]
    delivered = [one(s, "powerhil_samples_delivered_total").value for s in (first, second)]
    assert 10 <= delivered[0] < delivered[1] <= record.link.delivered
    assert one(second, "powerhil_commands_sent_total").value == 1
    assert one(second, "powerhil_commands_answered_total", outcome="done").value == 1
    injected = {s.labels["kind"]: s.value for s in second["powerhil_faults_injected_total"]}
    assert set(injected) == set(INJECTED_KINDS) and injected["drop"] + injected["corrupt"] > 0
    assert injected["duplicate"] == 0  # the scenario injects none
    # Now-values and what the viewer's statistics integrate.
    assert one(second, "powerhil_voltage_volts").value == pytest.approx(5.0, abs=0.05)
    assert one(second, "powerhil_current_amperes").value == pytest.approx(0.25, abs=0.01)
    joules = [one(s, "powerhil_energy_joules").value for s in (first, second)]
    assert 0 < joules[0] < joules[1]
    assert one(second, "powerhil_charge_coulombs").value > 0
    assert one(second, "powerhil_run_verdict", verdict="running").value == 1
    assert one(second, "powerhil_expectations", state="pending").value == 1
    assert {s.labels["state"] for s in second["powerhil_expectations"]} == set(STATES)
    assert one(second, "powerhil_run_info").labels["run_id"] == "1"
    assert one(second, "powerhil_link_up").value == 1
    assert record.verdict == "pass"


async def test_harness_view_metrics_tell_of_the_log(during_a_run: dict[str, Any]) -> None:
    db = during_a_run["db"]
    app = create_app(None, db)
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/metrics")
        assert response.status_code == 200
        text = await response.get_data(as_text=True)
    got = samples_of(text)
    count = open_for_reading(db).execute("SELECT count(*) FROM samples").fetchone()[0]
    assert one(got, "powerhil_log_rows", table="samples").value == count > 0
    assert one(got, "powerhil_log_runs", verdict="pass").value == 1
    newest = one(got, "powerhil_log_newest_run_info")
    assert newest.labels == {**RUN_LABELS, "firmware": "1.0.0", "run_id": "1", "verdict": "pass"}
    assert "powerhil_samples_delivered_total" not in got  # no run here
    # A run without a database and without a live run: an empty, valid answer.
    async with create_app(None, None).test_app() as bare:
        response = await bare.test_client().get("/metrics")
        assert response.status_code == 200 and await response.get_data(as_text=True) == ""


def exported_names(during_a_run: dict[str, Any], view_text: str) -> set[str]:
    names: set[str] = set()
    for text in [*(t for _, t in during_a_run["scrapes"]), view_text]:
        names |= set(samples_of(text))
    return names


async def test_the_grafana_dashboard_queries_only_metrics_the_viewer_exports(
    during_a_run: dict[str, Any],
) -> None:
    async with create_app(None, during_a_run["db"]).test_app() as test_app:
        view_text = await (await test_app.test_client().get("/metrics")).get_data(as_text=True)
    exported = exported_names(during_a_run, view_text)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["panels"]
    queried: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            names = set(re.findall(r"\bpowerhil_[a-z0-9_]+", target["expr"]))
            assert names, (panel["title"], target["expr"])
            queried |= names
    template = dashboard.get("templating", {}).get("list", [])
    for variable in template:
        queried |= set(re.findall(r"\bpowerhil_[a-z0-9_]+", json.dumps(variable.get("query"))))
    assert queried - exported == set()
    # And the dashboard shows what the issue asks for: the link's counters and V/A/W.
    assert {
        "powerhil_voltage_volts",
        "powerhil_samples_lost",
        "powerhil_retransmissions_total",
        "powerhil_faults_injected_total",
    } <= queried


def test_the_scrape_configuration_in_the_docs_points_at_metrics() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text()
    assert "metrics_path: /metrics" in text and "docs/grafana/powerhil.json" in text
