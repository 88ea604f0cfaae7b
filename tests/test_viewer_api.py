"""The viewer's HTTP side through Quart's test client: the JSON API over a real log, its
answers to bad parameters, CSV downloads, the pages and their assets, the Host check, and that
nothing in it accepts anything but reading."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from harness.cli import main
from harness.link import Sample
from harness.runner.bus import Bus, RunEvent, SampleEvent
from harness.runner.context import RunContext, RunOptions
from harness.runner.observer import Observer
from harness.scenario.load import load
from harness.store.db import open_for_reading
from harness.store.export import export_run
from harness.viewer import assets
from harness.viewer.app import NO_DB, create_app, host_allowed, local_names, origin_allowed
from harness.viewer.live import LiveState


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A log with one brownout run (virtual time), and that run's row."""
    db = tmp_path_factory.mktemp("viewer") / "h.db"
    assert main(["run", "scenarios/brownout.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    conn = open_for_reading(db)
    started, ended = conn.execute("SELECT started, ended FROM runs WHERE id = 1").fetchone()
    return db, {"id": 1, "started": started, "ended": ended}


@pytest.fixture
async def client(logged: tuple[Path, dict[str, Any]]) -> AsyncIterator[Any]:
    app = create_app(None, logged[0])
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def get_json(client: Any, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    assert response.status_code == status, (url, await response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    return await response.get_json()


async def test_runs_list_and_one_run_with_its_record(client: Any) -> None:
    runs = (await get_json(client, "/api/runs"))["runs"]
    assert [(r["id"], r["scenario"], r["verdict"], r["target"]) for r in runs] == [
        (1, "brownout", "pass", "mock")
    ]
    run = await get_json(client, "/api/runs/1")
    assert run["verdict"] == "pass" and run["firmware"] == "1.0.0"
    assert [e["state"] for e in run["record"]["expectations"]] == ["pass"] * 7
    sag = next(e for e in run["record"]["expectations"] if e["label"] == "sag depth")
    assert sag["limit"] == "< 3.2 V (marginal within 100 mV)" and sag["unit"] == "V"
    assert run["samples"]["count"] == run["record"]["link"]["delivered"] > 15
    missing = await get_json(client, "/api/runs/99", 404)
    assert missing == {"error": "run 99: no such run"}
    assert (await client.get("/api/runs/abc")).status_code == 404


async def test_events_filtered_by_kind_and_paged(client: Any) -> None:
    alerts = (await get_json(client, "/api/runs/1/events?kinds=alert"))["events"]
    assert [(e["kind"], e["data"]["status"]) for e in alerts] == [("alert", "uv")]
    first = (await get_json(client, "/api/runs/1/events?limit=3"))["events"]
    rest = (await get_json(client, f"/api/runs/1/events?after={first[-1]['id']}"))["events"]
    assert len(first) == 3 and rest[0]["id"] > first[-1]["id"]
    assert {"run", "step", "command", "expectation"} <= {e["kind"] for e in first + rest}
    bad = await get_json(client, "/api/runs/1/events?kinds=alert,nope", 400)
    assert bad["error"].startswith("kinds: unknown nope; known: run, hello")
    await get_json(client, "/api/runs/7/events", 404)


async def test_history_buckets_over_a_run(client: Any, logged: tuple[Path, dict[str, Any]]) -> None:
    run = logged[1]
    t_from, t_to = run["started"], run["ended"] + 1
    h = await get_json(client, f"/api/history?from={t_from}&to={t_to}&points=40")
    assert h["source"] == "raw" and h["points"] == 40
    assert len(h["t"]) == len(h["v_min"]) == len(h["w_avg"]) > 10
    assert min(h["v_min"]) < 3.2 < 4.9 < max(h["v_max"])  # the brownout's dip and the rail
    assert sum(h["n"]) > 0
    only = await get_json(client, f"/api/history?from={t_from}&to={t_to}&points=40&run=1")
    assert only["t"] == h["t"]
    other = await get_json(client, f"/api/history?from={t_from}&to={t_to}&points=40&run=2")
    assert other["t"] == []
    # ISO 8601 times work too (UTC when they do not say).
    from datetime import UTC, datetime

    iso = datetime.fromtimestamp(t_from, UTC).replace(tzinfo=None).isoformat()
    same = await get_json(client, f"/api/history?from={iso}&to={t_to}&points=40")
    assert same["from"] == pytest.approx(t_from, abs=1e-3)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=abc&to=10", "from='abc': expected unix seconds or an ISO 8601 time"),
        ("from=10&to=5", "to must be after from"),
        ("from=0&to=10&points=0", "points=0: must be 1..10000"),
        ("from=0&to=10&points=20000", "points=20000: must be 1..10000"),
        ("from=0&to=10&points=many", "points='many': expected an integer"),
        ("from=nan&to=10", "from='nan': expected a finite time"),
        ("from=0&to=10&run=0", "run=0: must be 1..9223372036854775807"),
    ],
)
async def test_bad_history_parameters_are_400_with_a_message(
    client: Any, query: str, message: str
) -> None:
    assert await get_json(client, f"/api/history?{query}", 400) == {"error": message}


async def test_csv_download_of_a_run_and_of_a_span(
    client: Any, logged: tuple[Path, dict[str, Any]]
) -> None:
    db, run = logged
    response = await client.get("/api/export.csv?run=1")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="powerhil-run-1.csv"'
    body = await response.get_data(as_text=True)
    expected = io.StringIO()
    export_run(open_for_reading(db), 1, expected)
    assert body == expected.getvalue()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) > 15 and rows[0]["status"] == "ok" and rows[0]["run"] == "1"
    span = await client.get(f"/api/export.csv?from={run['started']}&to={run['ended'] + 60}")
    assert await span.get_data(as_text=True) == body  # the only run in the log
    assert span.headers["Content-Disposition"].startswith('attachment; filename="powerhil-')
    for query, status, message in (
        ("", 400, "give run=ID, or from (and to, default now)"),
        ("?run=1&from=0", 400, "give run, or from and to, not both"),
        ("?run=5", 404, "run 5: no such run"),
    ):
        assert await get_json(client, f"/api/export.csv{query}", status) == {"error": message}


async def test_pages_and_their_assets_are_served(client: Any) -> None:
    assert not assets.missing(), "run `make web-assets` first"
    home = await client.get("/")
    assert home.status_code == 302 and home.headers["Location"] == "/runs"  # no live run here
    for path, script in (("/runs", "runs"), ("/runs/1", "run"), ("/history", "history")):
        page = await client.get(path)
        html = await page.get_data(as_text=True)
        assert page.status_code == 200 and page.mimetype == "text/html", path
        assert f'<script type="module" src="/static/js/{script}.js">' in html
        assert "/static/vendor/uPlot.min.css" in html
        assert "https://" not in html and "http://" not in html  # nothing from a CDN
    # (Quart's test client cannot take a body of more than ten chunks: uPlot itself is fetched
    # over a real server in test_viewer_server.py.)
    for path, kind in (
        ("/static/vendor/uPlot.min.css", "text/css"),
        ("/static/js/live.js", "text/javascript"),
        ("/static/js/charts.js", "text/javascript"),
        ("/static/css/viewer.css", "text/css"),
    ):
        response = await client.get(path)
        assert response.status_code == 200 and response.mimetype == kind, path
    assert (await client.get("/static/js/nope.js")).status_code == 404
    assert (await client.get("/static/../setup.py")).status_code == 404


async def test_status_without_a_run(client: Any, logged: tuple[Path, dict[str, Any]]) -> None:
    status = await get_json(client, "/api/status")
    assert status["mode"] == "archive" and status["db"] == str(logged[0])


async def test_the_viewer_only_reads(client: Any) -> None:
    """Every route is a GET (or the WebSocket, which takes no orders): nothing can be sent to
    the device or written to the log through the viewer."""
    app = create_app(None, None)
    for rule in app.url_map.iter_rules():
        assert rule.websocket or set(rule.methods or ()) <= {"GET", "HEAD", "OPTIONS"}, rule
    for path in ("/api/status", "/api/runs", "/api/runs/1", "/api/export.csv"):
        for method in ("post", "put", "delete", "patch"):
            response = await getattr(client, method)(path)
            assert response.status_code == 405, (method, path)


async def test_foreign_host_names_are_refused(client: Any) -> None:
    for host in ("evil.example", "attacker.com:8000", ""):
        response = await client.get("/api/status", headers={"Host": host})
        assert response.status_code == 403, host
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "192.168.1.20:8000"):
        assert (await client.get("/api/status", headers={"Host": host})).status_code == 200


def test_host_and_origin_rules() -> None:
    names = local_names()
    assert host_allowed("127.0.0.1:8000", names) and host_allowed("10.0.0.5", names)
    assert host_allowed("LOCALHOST:1", names) and host_allowed("app.localhost", names)
    assert not host_allowed("rebind.example:8000", names) and not host_allowed(None, names)
    assert origin_allowed(None, "127.0.0.1:8000")  # a program, not a page
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not origin_allowed("http://evil.example", "127.0.0.1:8000")
    assert not origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8000")
    assert not origin_allowed("null", "127.0.0.1:8000")


async def test_a_run_without_a_database_says_so() -> None:
    app = create_app(None, None)
    async with app.test_app() as test_app:
        c = test_app.test_client()
        for path in ("/api/runs", "/api/runs/1", "/api/history", "/api/export.csv?run=1"):
            assert await get_json(c, path, 404) == {"error": NO_DB}, path


async def test_live_status_shows_the_run_as_it_goes() -> None:
    scenario = load(Path("scenarios/brownout.toml"))
    bus = Bus()
    origin = trio.current_time()
    ctx = RunContext(scenario, RunOptions(), 7, origin, bus, Observer(scenario, origin, bus))
    live = LiveState(ctx)
    bus.subscribe(live.take)
    for seq in range(30):
        s = Sample(seq, 3, (seq + 1) * 1000, 1000, 5.0, 0.25, 1.25, 4.99, 5.01, 0.26, 50, "ok")
        bus.publish(SampleEvent(s, seq, seq + 1, seq + 1.05))
    bus.publish(RunEvent("alert", 12.0, {"status": "uv", "seq": 12}))
    app = create_app(live, None)
    async with app.test_app() as test_app:
        status = await get_json(test_app.test_client(), "/api/status")
    assert status["mode"] == "live" and status["db"] is None
    assert status["run"]["scenario"] == "brownout" and status["run"]["state"] == "running"
    assert {k: status["last"][k] for k in ("seq", "boot", "v", "a", "w", "status")} == {
        "seq": 29,
        "boot": 3,
        "v": 5.0,
        "a": 0.25,
        "w": 1.25,
        "status": "ok",
    }
    assert status["stats"]["window"]["samples"] == 30
    assert status["stats"]["energy"]["wh"] == pytest.approx(1.25 * 30 / 3600)
    assert [e["state"] for e in status["progress"]["expectations"]] == ["pending"] * 7
    assert status["link"]["state"] == "starting"  # no session: the run has not started
    hello = live.hello()
    assert hello["devices"][0]["backlog"]["t"][-1] == pytest.approx(ctx.started.timestamp() + 30)
    assert [e["kind"] for e in hello["events"]] == ["alert"]
