"""/api/openapi.json: it describes every /api/ route the app serves and nothing it does not,
its parameter bounds are the ones the app enforces, and schemathesis, fuzzing a live viewer on
127.0.0.1 from it (during a run, over a small log), finds every answer JSON (strict: no NaN or
Infinity) with a documented status code and content type, and the documented shape."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from harness.cli import main
from harness.runner.context import RunOptions
from harness.runner.run import run_scenario
from harness.scenario.load import parse
from harness.store.recorder import recorder
from harness.viewer.app import create_app
from harness.viewer.live import LiveState
from harness.viewer.openapi import document
from harness.viewer.server import viewer
from tests.schemathesis_hooks import strict_json

ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = 15
"""Test cases per operation and phase: enough to reach every parameter's edges, few enough to
keep `make test` short."""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "strict_json",  # tests/schemathesis_hooks.py
)
"""Not positive_data_acceptance: some valid-looking requests are rightly refused by a rule
between parameters the description cannot state (`to` after `from`, `run` or `from`, a time
before 1970); their 400 is documented and checked like any answer."""

LONG = """\
[scenario]
name = "openapi-live"
duration = "60s"
seed = 5

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small log: one brownout run in virtual time."""
    db = tmp_path_factory.mktemp("openapi") / "h.db"
    assert main(["run", "scenarios/brownout.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    return db


@pytest.fixture
async def client(logged: Path) -> AsyncIterator[Any]:
    app = create_app(None, logged)
    async with app.test_app() as test_app:
        yield test_app.test_client()


def openapi_path(rule: str) -> str:
    """A Quart rule in OpenAPI's spelling: /api/runs/<int:run_id> -> /api/runs/{run_id}."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def served_routes() -> dict[str, set[str]]:
    """Every HTTP route the app serves (not the WebSocket), with its methods."""
    app = create_app(None, None)
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            continue
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        routes.setdefault(openapi_path(rule.rule), set()).update(methods)
    return routes


async def test_the_description_lists_every_api_route_the_app_serves(client: Any) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    served = await response.get_json()
    assert served == json.loads(json.dumps(document()))
    assert served["openapi"].startswith("3.1")
    routes = served_routes()
    api = {path for path in routes if path.startswith("/api/")}
    described = set(served["paths"])
    assert api == {path for path in described if path.startswith("/api/")}
    assert described <= set(routes)  # /metrics too, and nothing the app lacks
    for path, item in served["paths"].items():
        assert set(item) == routes[path], path
        for operation in item.values():
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"{(\w+)}", path)), path


def integer_bounds() -> list[tuple[str, str, int, int]]:
    """Every integer query parameter's documented (path, name, minimum, maximum)."""
    out = []
    for path, item in document()["paths"].items():
        for p in item["get"].get("parameters", []):
            schema = p["schema"]
            if p["in"] == "query" and schema.get("type") == "integer":
                out.append((path, p["name"], schema["minimum"], schema["maximum"]))
    return out


BASE = {"/api/history": "from=0&", "/api/export.csv": ""}
"""What a request needs besides the parameter tried (a span for the history)."""


@pytest.mark.parametrize(("path", "name", "lo", "hi"), integer_bounds())
async def test_each_documented_bound_is_the_one_the_app_enforces(
    client: Any, path: str, name: str, lo: int, hi: int
) -> None:
    url = path.replace("{run_id}", "1") + "?" + BASE.get(path, "")
    for value in (lo - 1, hi + 1):
        response = await client.get(f"{url}{name}={value}")
        assert response.status_code == 400, (path, name, value)
        assert (await response.get_json())["error"].startswith(f"{name}={value}: must be")
    for value in (lo, hi):
        response = await client.get(f"{url}{name}={value}")
        assert response.status_code in (200, 404), (path, name, value)
        if response.status_code == 404:
            assert "no such run" in (await response.get_json())["error"]


async def test_an_api_path_the_app_lacks_is_json_too(client: Any) -> None:
    for url, status in (("/api/nope", 404), ("/api/runs/-1", 404)):
        response = await client.get(url)
        assert response.status_code == status and response.mimetype == "application/json"
        assert (await response.get_json())[
            "error"
        ] == f"{url}: no such route (/api/openapi.json lists them)"
    response = await client.post("/api/runs")
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert (await response.get_json())[
        "error"
    ] == "POST /api/runs: not allowed (every route is a GET)"
    page = await client.get("/nope")  # pages keep their HTML answer
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_the_strict_json_check_refuses_nan_and_infinity() -> None:
    def response(body: bytes, kind: str = "application/json") -> Any:
        return SimpleNamespace(headers={"content-type": [kind]}, content=body)

    assert strict_json(None, response(b'{"v": 1.5, "w": null}'), None) is True  # type: ignore[arg-type]
    for body in (b'{"v": NaN}', b"[Infinity]", b'{"a": -Infinity}'):
        with pytest.raises(AssertionError, match="not strict JSON"):
            strict_json(None, response(body), None)  # type: ignore[arg-type]
    assert strict_json(None, response(b"NaN", "text/csv"), None) is None  # type: ignore[arg-type]


async def fuzz(url: str, report: Path) -> trio.CompletedProcess[bytes]:
    """schemathesis' CLI on the description at `url`, its JSON report to `report` (and
    anything else it writes beside it)."""
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(SCHEMATHESIS),
        "run",
        url + "api/openapi.json",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "1",
        "--workers",
        "1",
        "--checks",
        ",".join(CHECKS),
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "10",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    return await trio.run_process(
        command, capture_stdout=True, capture_stderr=True, check=False, env=env, cwd=report.parent
    )


async def test_schemathesis_finds_every_answer_documented_and_strict_json(
    logged: Path, tmp_path: Path
) -> None:
    """The fuzz run, against the viewer of a real run (so /api/status and /metrics answer
    live) that logs to a copy of the small log (so the archive routes find runs)."""
    db = tmp_path / "h.db"
    db.write_bytes(logged.read_bytes())
    scenario = parse(LONG, tmp_path / "long.toml")
    report = tmp_path / "schemathesis.json"
    started: dict[str, str] = {}
    ready = trio.Event()
    done: dict[str, Any] = {}

    def on_start(url: str, live: LiveState) -> None:
        started["url"] = url
        ready.set()

    async with trio.open_nursery() as nursery:

        async def fuzz_then_stop() -> None:
            await ready.wait()
            done["process"] = await fuzz(started["url"], report)
            nursery.cancel_scope.cancel()  # the run has served its purpose

        nursery.start_soon(fuzz_then_stop)
        await run_scenario(
            scenario,
            RunOptions(out=io.StringIO()),
            (viewer("127.0.0.1:0", db, on_start=on_start), recorder(db)),
        )
    process = done["process"]
    output = process.stdout.decode() + process.stderr.decode()
    assert process.returncode == 0, output[-4000:]
    counts = json.loads(report.read_text())
    operations, cases = counts["operations"], counts["test_cases"]
    # Every operation but the description itself (schemathesis does not fuzz its own source).
    assert operations["tested"] == len(document()["paths"]) - 1 == 9, operations
    assert counts["failures"] == [] and counts["errors"] == []
    assert cases["generated"] > 100 and cases["with_failures"] == 0 and cases["errored"] == 0
    print(
        f"schemathesis: {operations['tested']} operations, {cases['generated']} test cases, "
        f"{cases['with_failures']} with failures, {cases['errored']} errored, "
        f"{counts['running_time']:.1f} s"
    )
