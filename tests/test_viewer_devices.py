"""The viewer of a run of several devices: during a real (wall-clock) run of two mocks on a real
Hypercorn, a /ws client gets each device's samples named by the device (every one, in order),
each device's stats and progress, and events that name their device; /metrics has a series per
device; and over the log the history API, the devices API and the pages select a device. The
hub's per-device bookkeeping (what a slow client missed, the coalesced slots) is checked on its
own, without a run."""

from __future__ import annotations

import io
import json
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import ConnectionClosed, open_websocket_url

from harness.runner.context import RunOptions
from harness.runner.run import run_scenario
from harness.scenario.load import parse
from harness.store.recorder import recorder
from harness.viewer.app import create_app
from harness.viewer.hub import Hub, Item
from harness.viewer.live import BACKLOG_MAX, BACKLOG_MIN, BACKLOG_TOTAL, LiveState, backlog_capacity
from harness.viewer.server import viewer
from tests.scenario_texts import LEFT_AND_RIGHT

TWO = (
    """\
[scenario]
name = "viewer-two"
duration = "3s"
seed = 4

"""
    + LEFT_AND_RIGHT
    + """
[[step]]
at = "0.2s"
send = { cmd = "set_interval", value = 100 }

[[expect]]
device = "left"
measure = "v"
stat = "avg"
above = 4.5
"""
)
NAMES = ["left", "right"]
ENOUGH = 8
"""Samples of each device delivered before the scrape."""


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


async def run_two(folder: Path) -> dict[str, Any]:
    """The two-device run with a /ws client from its start and one /metrics scrape once both
    devices have delivered ENOUGH samples."""
    scenario = parse(TWO, folder / "two.toml")
    db = folder / "h.db"
    started: dict[str, Any] = {}
    ready = trio.Event()
    got: dict[str, Any] = {"messages": []}

    def on_start(url: str, live: LiveState) -> None:
        started.update(url=url, live=live)
        ready.set()

    async def client() -> None:
        await ready.wait()
        url = started["url"].replace("http://", "ws://") + "ws"
        async with open_websocket_url(url) as ws:
            try:
                while True:
                    got["messages"].append(json.loads(await ws.get_message()))
            except ConnectionClosed:
                pass

    async def scraper() -> None:
        await ready.wait()
        devices = started["live"].ctx.devices
        while (
            any(d.observer.last_sample is None for d in devices.values())
            or min(sum(b.delivered for b in d.observer.boots.values()) for d in devices.values())
            < ENOUGH
        ):
            await trio.sleep(0.05)
        got["metrics"] = await trio.to_thread.run_sync(http_get, started["url"] + "metrics")
        got["status"] = json.loads(
            await trio.to_thread.run_sync(http_get, started["url"] + "api/status")
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        nursery.start_soon(scraper)
        result = await run_scenario(
            scenario,
            RunOptions(out=io.StringIO()),
            (viewer("127.0.0.1:0", db, on_start=on_start), recorder(db)),
        )
    got.update(record=result.record, db=db, live=started["live"])
    return got


@pytest.fixture(scope="module")
def two_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return trio.run(run_two, tmp_path_factory.mktemp("two"))


def of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def items(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Every item of the batched messages of a kind (measurements, events), in order."""
    return [item for m in of(messages, kind) for item in m["items"]]


def test_the_websocket_names_each_devices_samples_and_gives_every_one(
    two_run: dict[str, Any],
) -> None:
    messages = two_run["messages"]
    hello = messages[0]
    assert hello["type"] == "hello" and "device" not in hello  # the run's, not a device's
    assert [d["name"] for d in hello["data"]["devices"]] == NAMES
    assert hello["data"]["run"]["devices"] == NAMES
    assert all(d["target"] == "mock" for d in hello["data"]["devices"])
    samples = items(messages, "measurements")
    assert all(list(m) == ["device", "missed", "data"] for m in samples)
    assert {m["device"] for m in samples} == set(NAMES)
    record = two_run["record"]
    for section, backlog in zip(record.devices, hello["data"]["devices"], strict=True):
        mine = [m for m in samples if m["device"] == section.name]
        seqs = [m["data"]["seq"] for m in mine]
        assert seqs == sorted(set(seqs))  # in order, once each
        missed = sum(m["missed"] for m in mine)
        assert len(backlog["backlog"]["t"]) + len(mine) + missed == section.link.delivered
    # Each device's panels, one message a kind for every device, and events that say whose.
    for kind in ("stats", "progress"):
        found = of(messages, kind)
        assert len(found) >= 2 and all(set(m["devices"]) == set(NAMES) for m in found), kind
    stats = of(messages, "stats")[-1]["devices"]
    assert stats["right"]["faults"]["injected"].get("drop", 0) > 0  # its own link's faults
    assert stats["left"]["faults"]["injected"].get("drop", 0) == 0
    progress = of(messages, "progress")[-1]["devices"]
    assert [e["label"] for e in progress["left"]["expectations"]] == [
        "avg v over whole run > 4.5 V"
    ]
    assert progress["right"]["expectations"] == []
    events = items(messages, "events")
    assert all(e["device"] in NAMES for e in events[:-1])
    assert events[-1]["kind"] == "viewer" and "device" not in events[-1]
    feed = [*hello["data"]["events"], *events]  # before and after it came
    assert {e["device"] for e in feed if e["kind"] == "hello"} == set(NAMES)
    assert {e["device"] for e in feed if e["kind"] == "gap"} == {"right"}  # its lossy link
    # The first device's last minute at the top too, as a run of one device has it.
    first = hello["data"]["devices"][0]
    assert all(hello["data"][k] == first[k] for k in ("backlog", "outliers", "supply"))
    # /api/status: each device in order, the first one's at the top.
    status = two_run["status"]
    assert [d["name"] for d in status["devices"]] == NAMES
    assert status["link"] == status["devices"][0]["link"] and status["link"]["target"] == "mock"


def test_metrics_have_a_series_per_device(two_run: dict[str, Any]) -> None:
    families = {f.name: f for f in text_string_to_metric_families(two_run["metrics"])}
    names = [f.name for f in text_string_to_metric_families(two_run["metrics"])]
    assert len(names) == len(set(names))  # one family a metric, however many devices
    delivered = families["powerhil_samples_delivered"].samples
    assert sorted(s.labels["device"] for s in delivered) == NAMES
    for s in delivered:
        assert s.labels == {
            "scenario": "viewer-two",
            "target": "mock",
            "device": s.labels["device"],
            "firmware": "1.0.0",
        }
        assert s.value >= ENOUGH
    volts = {s.labels["device"] for s in families["powerhil_voltage_volts"].samples}
    assert volts == set(NAMES)
    (verdict,) = families["powerhil_run_verdict"].samples
    assert "device" not in verdict.labels and verdict.labels["verdict"] == "running"
    expectations = Counter(s.labels["device"] for s in families["powerhil_expectations"].samples)
    assert set(expectations) == set(NAMES)


@pytest.fixture
async def client(two_run: dict[str, Any]) -> AsyncIterator[Any]:
    app = create_app(None, two_run["db"])
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def test_over_the_log_the_api_and_pages_select_a_device(
    client: Any, two_run: dict[str, Any]
) -> None:
    response = await client.get("/api/devices?run=1")
    assert await response.get_json() == {"run": 1, "devices": NAMES}
    assert (await (await client.get("/api/devices")).get_json())["devices"] == NAMES
    response = await client.get("/api/devices?run=7")
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "run 7: no such run"
    run = await (await client.get("/api/runs/1")).get_json()
    span = f"from={run['started'] - 1}&to={run['ended'] + 1}&points=1&run=1"
    counts = {}
    for name in NAMES:
        h = await (await client.get(f"/api/history?{span}&device={name}")).get_json()
        counts[name] = sum(h["n"])
        events = await (
            await client.get(f"/api/runs/1/events?kinds=hello&device={name}")
        ).get_json()
        assert events["events"] and {e["device"] for e in events["events"]} == {name}
    every = await (await client.get(f"/api/history?{span}")).get_json()
    assert sum(every["n"]) == sum(counts.values()) and min(counts.values()) > 0
    for page in ("/history", "/runs/1"):
        html = await (await client.get(page)).get_data(as_text=True)
        assert 'id="device"' in html, page  # the selector the page's script fills


def test_the_windows_share_a_bound_however_many_devices() -> None:
    assert backlog_capacity(1) == BACKLOG_MAX
    assert backlog_capacity(2) == min(BACKLOG_MAX, BACKLOG_TOTAL // 2)
    for n in (3, 16, 64, 1000):
        assert BACKLOG_MIN <= backlog_capacity(n) <= BACKLOG_MAX
        assert n * backlog_capacity(n) <= max(BACKLOG_TOTAL, n * BACKLOG_MIN)


async def test_a_slow_client_is_told_what_it_missed_of_each_device() -> None:
    hub = Hub(sample_queue=4)
    client = hub.add()
    left, right = json.dumps("left"), json.dumps("right")
    for i in range(6):  # the first two dropped: left 0 and right 1
        hub.sample({"seq": i}, json.dumps, left if i % 2 == 0 else right)
    hub.slot("stats", {"n": 1}, left)
    hub.slot("stats", {"n": 2}, right)
    hub.slot("stats", {"n": 3}, left)  # coalesced in left's place
    texts = [json.loads(text) for text in client.take()]
    assert [m["type"] for m in texts] == ["measurements", "stats"]  # one message of each
    assert [(m["device"], m["missed"], m["data"]) for m in texts[0]["items"]] == [
        ("left", 1, {"seq": 2}),
        ("right", 1, {"seq": 3}),
        ("left", 0, {"seq": 4}),
        ("right", 0, {"seq": 5}),
    ]
    assert texts[1]["devices"] == {"left": {"n": 3}, "right": {"n": 2}}
    client.put_slot("progress", Item({"run": True}))
    assert [json.loads(t) for t in client.take()] == [{"type": "progress", "data": {"run": True}}]


async def test_a_tick_is_one_stats_and_one_progress_message_for_every_device(
    two_run: dict[str, Any],
) -> None:
    live = two_run["live"]
    client = live.hub.add()
    try:
        await live.tick()
        texts = [json.loads(text) for text in client.take()]
    finally:
        live.hub.remove(client)
    assert [m["type"] for m in texts] == ["stats", "progress"]
    assert all(list(m["devices"]) == NAMES for m in texts)
