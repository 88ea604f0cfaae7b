"""The viewer on a real Hypercorn on a free loopback port, during real (wall-clock) runs of the
mock: WebSocket clients (trio-websocket) get every sample as it comes, a client that stops
reading costs the run and the store nothing and is told what it missed, foreign pages are
refused, and the end of the run closes everything and frees the port."""

from __future__ import annotations

import io
import itertools
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from statistics import median
from typing import Any

import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)

from harness.cli import main
from harness.link import Sample
from harness.runner.bus import Bus, SampleEvent
from harness.runner.context import RunContext, RunOptions
from harness.runner.observer import Observer
from harness.runner.run import run_scenario
from harness.scenario.load import parse
from harness.store.db import (
    Batch,
    create_run,
    flat,
    open_for_reading,
    open_for_writing,
    write_batch,
)
from harness.store.export import export_run
from harness.store.recorder import recorder
from harness.viewer import assets
from harness.viewer.app import create_app
from harness.viewer.hub import EVENT_QUEUE, SAMPLE_QUEUE
from harness.viewer.live import LiveState
from harness.viewer.server import start_server, viewer

SEED_SHAPE = {"v": float, "a": float, "w": float, "ts": int, "seq": int, "status": str}

QUICK = """\
[scenario]
name = "viewer-quick"
duration = "{duration}"
seed = 3

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "2s"
volts = 5.0
[[supply]]
at = "2.2s"
volts = 4.0
[[supply]]
at = "2.8s"
volts = 4.0
[[supply]]
at = "3s"
volts = 5.0

[[step]]
at = "0.5s"
send = {{ cmd = "set_interval", value = {interval} }}
[[step]]
at = "0.6s"
send = {{ cmd = "set_threshold", uv = 4.5 }}

[[expect]]
alert = "uv"
within = ["1.5s", "3.5s"]
[[expect]]
link = {{ lost = 0, duplicated = 0, commands_failed = 0 }}
"""


def quick(tmp_path: Path, duration: str = "4s", interval: int = 100) -> Any:
    return parse(QUICK.format(duration=duration, interval=interval), tmp_path / "quick.toml")


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


async def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    return await trio.to_thread.run_sync(http_get, url, headers)


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "ws"


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


class Viewer:
    """The URL and live state of a run's viewer, once it listens."""

    def __init__(self) -> None:
        self.url = ""
        self.live: LiveState | None = None
        self.ready = trio.Event()

    def started(self, url: str, live: LiveState) -> None:
        self.url, self.live = url, live
        self.ready.set()


async def read_all(ws: WebSocketConnection) -> tuple[list[tuple[float, dict[str, Any]]], Any]:
    """Every message until the server closes, with when it came; and the close reason."""
    got = []
    try:
        while True:
            text = await ws.get_message()
            got.append((trio.current_time(), json.loads(text)))
    except ConnectionClosed as closed:
        return got, closed.reason


def of(messages: list[tuple[float, dict[str, Any]]], kind: str) -> list[tuple[float, Any]]:
    return [(t, m) for t, m in messages if m["type"] == kind]


def items(messages: list[tuple[float, dict[str, Any]]], kind: str) -> list[tuple[float, Any]]:
    """Each item of the batched messages of a kind (measurements, events), with when its
    message came, in order."""
    return [(t, item) for t, m in of(messages, kind) for item in m["items"]]


def only_device(message: dict[str, Any]) -> Any:
    """A one-device run's part of a stats or progress message."""
    (data,) = message["devices"].values()
    return data


async def test_a_run_streams_every_sample_to_a_websocket_client(tmp_path: Path) -> None:
    """The bar: during a run /api/status answers and a client on /ws gets a sample message
    every interval, in the seed's shape; then the run's end closes it and frees the port."""
    scenario = quick(tmp_path)
    options = RunOptions(out=io.StringIO())
    db = tmp_path / "h.db"
    view = Viewer()
    seen: dict[str, Any] = {}

    async def client() -> None:
        await view.ready.wait()
        async with open_websocket_url(ws_url(view.url)) as ws:
            # The viewer takes no orders: these go nowhere.
            await ws.send_message('{"cmd":"set_interval","value":10,"seq":1}')
            await ws.send_message("reset")
            seen["status"] = await fetch(view.url + "api/status")
            seen["messages"], seen["close"] = await read_all(ws)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        result = await run_scenario(
            scenario, options, (viewer("127.0.0.1:0", db, on_start=view.started), recorder(db))
        )
        returned = trio.current_time()
    record = result.record
    assert result.exit_code == 0, record.expectations

    code, kind, body = seen["status"]
    status = json.loads(body)
    assert code == 200 and kind == "application/json"
    assert status["mode"] == "live" and status["run"]["scenario"] == "viewer-quick"
    assert status["link"]["target"] == "mock" and status["run"]["run_id"] == 1

    messages = seen["messages"]
    assert messages[0][1]["type"] == "hello"
    hello = messages[0][1]["data"]
    assert hello["run"]["duration"] == 4.0 and len(hello["steps"]) == 2
    samples = items(messages, "measurements")
    for _, m in samples:
        assert m["missed"] == 0
        assert {k: type(m["data"][k]) for k in SEED_SHAPE} == SEED_SHAPE
    seqs = [m["data"]["seq"] for _, m in samples]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every one, in order, once
    assert len(hello["devices"][0]["backlog"]["t"]) + len(samples) == record.link.delivered
    # After set_interval 100 ms took effect, one every interval.
    fast = [t for t, m in samples if m["data"]["dt"] <= 110]
    gaps = [b - a for a, b in itertools.pairwise(fast)]
    assert len(fast) >= 20 and 0.08 <= median(gaps) <= 0.12 and max(gaps) < 0.5, gaps
    assert len(of(messages, "stats")) >= 4 and of(messages, "progress")
    events = [e for _, e in items(messages, "events")]
    kinds = [e["kind"] for e in events]
    # The uv expectation passes live, before the run is over.
    uv_pass = next(
        i for i, e in enumerate(events) if e["kind"] == "expectation" and e["data"]["number"] == 1
    )
    assert events[uv_pass]["data"]["state"] == "pass" and uv_pass < kinds.index("run")
    assert kinds[-1] == "viewer" and events[-1]["data"] == {"state": "closing", "verdict": "pass"}
    last_progress = only_device(of(messages, "progress")[-1][1])
    assert last_progress["state"] == "ended" and last_progress["verdict"] == "pass"
    assert [e["state"] for e in last_progress["expectations"]] == ["pass", "pass"]
    assert seen["close"].code == 1001 and seen["close"].reason == "the run has ended"

    # Nothing the client sent reached the device: only the scenario's two commands went out.
    assert [c.name for c in record.commands] == ["set_interval", "set_threshold"]
    assert record.link.commands_executed_twice == 0
    # The run ends cleanly: the server is gone, its port free, soon after the close.
    assert returned - messages[-1][0] < 2.0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port_of(view.url)), timeout=1).close()


async def _stalled_client(
    nursery: trio.Nursery, url: str, receive_buffer: int = 4096
) -> WebSocketConnection:
    """A WebSocket client that reads nothing until told: its socket's receive buffer is small and
    trio-websocket stops reading the socket once one message waits for the application."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.connect(("127.0.0.1", port_of(url)))
    stream = trio.SocketStream(sock)
    return await wrap_client_stream(
        nursery, stream, f"127.0.0.1:{port_of(url)}", "/ws", message_queue_size=1
    )


async def test_a_client_that_stops_reading_costs_the_run_nothing(tmp_path: Path) -> None:
    """100 samples a second for 4 s; one client reads nothing for seconds: its queue stays
    bounded, it is told exactly how many samples it missed, and the link, the store and the
    client that does read get everything."""
    scenario = quick(tmp_path, duration="4s", interval=10)
    db = tmp_path / "h.db"
    options = RunOptions(out=io.StringIO())
    view = Viewer()
    stalled_result: dict[str, Any] = {}
    reader_result: dict[str, Any] = {}
    most_queued = 0

    async def stalled() -> None:
        nonlocal most_queued
        await view.ready.wait()
        assert view.live is not None
        async with trio.open_nursery() as inner:
            ws = await _stalled_client(inner, view.url)
            await trio.sleep(0.2)
            (mine,) = view.live.hub.clients  # the only client so far
            async with trio.open_nursery() as rest:
                rest.start_soon(reader)
                # Read nothing until this client has lost samples (or the run is nearly over).
                with trio.move_on_after(3.2):
                    while mine.missed == 0 or trio.current_time() - started < 2.0:
                        most_queued = max(most_queued, mine.queued)
                        await trio.sleep(0.005)
                stalled_result["missed_while_stalled"] = mine.missed
                stalled_result["messages"], stalled_result["close"] = await read_all(ws)
            inner.cancel_scope.cancel()

    async def reader() -> None:
        async with open_websocket_url(ws_url(view.url)) as ws:
            reader_result["messages"], _ = await read_all(ws)

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stalled)
        result = await run_scenario(
            scenario, options, (viewer("127.0.0.1:0", db, on_start=view.started), recorder(db))
        )
    wall = trio.current_time() - started
    record = result.record
    delivered = record.link.delivered

    # The run and the store never noticed.
    assert result.exit_code == 0 and record.link.lost == 0
    assert delivered > 250
    assert wall < 4.0 + 3.0
    stored = open_for_reading(db).execute("SELECT count(*) FROM samples").fetchone()[0]
    assert stored == delivered
    # The stalled client's queue stayed bounded; it was told what it missed, to the sample.
    assert most_queued <= SAMPLE_QUEUE + EVENT_QUEUE + 2
    assert stalled_result["missed_while_stalled"] > 0
    messages = stalled_result["messages"]
    samples = [m for _, m in items(messages, "measurements")]
    backlog = len(messages[0][1]["data"]["devices"][0]["backlog"]["t"])
    missed = sum(m["missed"] for m in samples)
    assert backlog + len(samples) + missed == delivered
    assert missed >= stalled_result["missed_while_stalled"]
    stats = [m for _, m in of(messages, "stats")]
    assert stats[-1]["client"]["missed"] == missed
    assert stalled_result["close"].code == 1001
    # The client that reads got every sample, none missed.
    good = [m for _, m in items(reader_result["messages"], "measurements")]
    good_backlog = len(reader_result["messages"][0][1]["data"]["devices"][0]["backlog"]["t"])
    assert all(m["missed"] == 0 for m in good)
    assert good_backlog + len(good) == delivered


@asynccontextmanager
async def serving(app_factory: Callable[[], Any]) -> AsyncIterator[str]:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await start_server(nursery, app_factory(), "127.0.0.1", 0, stop)
        try:
            yield url
        finally:
            stop.set()


def synthetic_live(tmp_path: Path) -> LiveState:
    """A LiveState fed by hand (no device), for what does not need a run."""
    scenario = quick(tmp_path)
    bus = Bus()
    origin = trio.current_time()
    ctx = RunContext(scenario, RunOptions(), 3, origin, bus, Observer(scenario, origin, bus))
    live = LiveState(ctx)
    bus.subscribe(live.take)
    for seq in range(5):
        s = Sample(seq, 1, (seq + 1) * 100, 100, 5.0, 0.25, 1.25, 4.99, 5.01, 0.26, 5, "ok")
        bus.publish(SampleEvent(s, seq / 10, (seq + 1) / 10, (seq + 1) / 10))
    return live


async def test_pages_from_other_sites_are_refused_on_the_websocket(tmp_path: Path) -> None:
    live = synthetic_live(tmp_path)
    async with serving(lambda: create_app(live, None)) as url:
        port = port_of(url)
        for origin in (b"http://evil.example", b"http://127.0.0.1:1", b"null"):
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(ws_url(url), extra_headers=[(b"Origin", origin)]):
                    pass
            assert info.value.status_code == 403, origin
        # A DNS name that is not this machine's (rebinding) is refused too.
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(
            f"GET /ws HTTP/1.1\r\nHost: rebind.example:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 403 ")
        await stream.aclose()
        # The viewer's own page may.
        own = f"http://127.0.0.1:{port}".encode()
        async with open_websocket_url(ws_url(url), extra_headers=[(b"Origin", own)]) as ws:
            hello = json.loads(await ws.get_message())
            assert (
                hello["type"] == "hello" and len(hello["data"]["devices"][0]["backlog"]["t"]) == 5
            )
            # A run of one device: its last minute at the top of the hello too, as it always was.
            first = hello["data"]["devices"][0]
            assert all(hello["data"][k] == first[k] for k in ("backlog", "outliers", "supply"))
        code, _, _ = await fetch(url + "api/status", {"Host": "rebind.example"})
        assert code == 403
        await live.finish()
        live.hub.close_all()


async def test_assets_are_served_whole_and_nothing_comes_from_elsewhere(tmp_path: Path) -> None:
    live = synthetic_live(tmp_path)
    async with serving(lambda: create_app(live, None)) as url:
        code, kind, body = await fetch(url + "static/vendor/uPlot.esm.js")
        assert code == 200 and kind == "text/javascript"
        assert body == (assets.VENDOR / "uPlot.esm.js").read_bytes()
        code, kind, page = await fetch(url)
        assert code == 200 and kind == "text/html"
        loads = re.findall(rb'(?:src|href)="([^"]*)"', page)
        assert b"/static/js/live.js" in loads
        assert all(x.startswith((b"/", b"data:")) for x in loads), loads  # all from here
        for script in ("live", "charts", "common", "timeline", "history", "runs", "run"):
            code, _, text = await fetch(f"{url}static/js/{script}.js")
            imports = re.findall(rb'^import .* from "([^"]+)";$', text, re.MULTILINE)
            assert code == 200, script
            assert all(i.startswith((b"./", b"/static/")) for i in imports), (script, imports)
            assert b"fetch(`http" not in text and b'fetch("http' not in text
        await live.finish()


async def test_a_big_csv_streams(tmp_path: Path) -> None:
    """120,000 samples (about 14 MB of CSV) come through in chunks, byte for byte."""
    db = tmp_path / "big.db"
    conn = open_for_writing(db)
    run = create_run(conn, "run", "big", "mock", 0, 1.8e9)
    rows = [
        (
            run,
            "dut",
            1,
            i,
            1800000000.0 + i / 10,
            1800000000.0 + i / 10,
            i * 100,
            100,
            5.0,
            0.25,
            1.25,
            4.99,
            5.01,
            0.26,
            10,
            "ok",
        )
        for i in range(120_000)
    ]
    write_batch(conn, Batch(flat(rows), [], []))
    conn.execute("UPDATE runs SET ended = ?, verdict = 'pass' WHERE id = ?", (1.8e9 + 12_000, run))
    conn.commit()
    expected = io.StringIO()
    export_run(sqlite3.connect(db), run, expected)
    async with serving(lambda: create_app(None, db)) as url:
        code, kind, body = await fetch(f"{url}api/export.csv?run={run}")
    assert code == 200 and kind == "text/csv"
    assert body.decode() == expected.getvalue() and body.count(b"\n") == 120_001


def test_a_port_in_use_is_one_line_and_exit_2_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    db = tmp_path / "h.db"
    try:
        code = main(["run", "scenarios/clean.toml", "--bind", f"127.0.0.1:{port}", "--db", str(db)])
    finally:
        holder.close()
    assert code == 2
    err = capsys.readouterr().err
    assert err == (
        f"--bind 127.0.0.1:{port}: address already in use (another viewer?); use another port, "
        f"e.g. --bind 127.0.0.1:{port + 1}, or --no-view\n"
    )
    assert not db.exists()  # the run never started, so it is not on record


def test_virtual_time_runs_say_the_viewer_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "scenarios/clean.toml", "--fast", "--db", str(tmp_path / "h.db")]) == 0
    assert "viewer: not served in virtual time (--fast)" in capsys.readouterr().out


def test_harness_view_serves_the_log_until_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    assert main(["run", "scenarios/brownout.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "view", "--db", str(db), "--bind", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("viewer: http://127.0.0.1:") and line.endswith(
            f"/ (history and runs from {db}; Ctrl-C stops)\n"
        )
        url = line.split()[1]
        code, _, body = http_get(url + "api/runs")
        assert code == 200 and json.loads(body)["runs"][0]["verdict"] == "pass"
        code, _, _ = http_get(url + "runs/1")
        assert code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port_of(url)), timeout=1).close()


def test_harness_view_without_a_log_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.db"
    assert main(["view", "--db", str(missing), "--bind", "127.0.0.1:0"]) == 2
    assert capsys.readouterr().err == f"{missing}: no such database (a run creates it; see --db)\n"
