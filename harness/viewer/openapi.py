"""The OpenAPI 3.1 description of the viewer's HTTP API, served at `/api/openapi.json`.

Written by hand beside the routes in `app.py` (docs/viewer.md says the same in prose); a test
holds it to the app: every `/api/` route the app serves is described here and nothing else is,
each documented parameter bound is the one the app enforces, and a schemathesis run fuzzes the
app from it (tests/test_viewer_openapi.py).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from typing import Any

from harness.runner.bus import KINDS
from harness.store.queries import COLUMNS, MAX_POINTS
from harness.viewer.app import MAX_ID, MAX_TIME

OPENAPI = "3.1.0"

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, _ref("Error"))


BAD = _error("A parameter the API cannot use; `error` says which and why.")
NOT_FOUND = _error("No such run, or no database (a run without --db).")
NO_DEVICE = _error(
    "No such run, no such device (`error` names the devices there are), or no database (a run "
    "without --db)."
)
UNUSABLE = _error("The database cannot be read.")


def _query(name: str, description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **more}


def _int(name: str, description: str, lo: int, hi: int, default: int | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": hi}
    if default is not None:
        schema["default"] = default
    return _query(name, description, schema)


TIME = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_TIME},
        {"type": "string", "format": "date-time"},
    ]
}
"""Unix seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
FROM = _query("from", "Start: unix seconds or ISO 8601 (default: `to` - 1 h).", TIME)
TO = _query("to", "End: unix seconds or ISO 8601 (default: now); after `from`.", TIME)
RUN_QUERY = _int("run", "Only this run's samples.", 1, MAX_ID, None)
DEVICE = _query(
    "device",
    "Only this device's rows (a name the log has; none: every device).",
    {"type": "string"},
)
RUN_PATH = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "description": "The run's id in the log.",
    "schema": {"type": "integer", "minimum": 0},
}

NUMBERS = {"type": "array", "items": {"type": ["number", "null"]}}
SPAN = {
    "type": "object",
    "required": ["count", "first", "last"],
    "properties": {
        "count": {"type": "integer"},
        "first": {"type": ["number", "null"]},
        "last": {"type": ["number", "null"]},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Status": {
        "type": "object",
        "required": ["mode", "db", "time"],
        "properties": {
            "mode": {"enum": ["live", "archive"]},
            "db": {"type": ["string", "null"]},
            "time": {"type": "number"},
            "run": {"type": "object"},
            "link": {"type": "object"},
            "last": {"type": ["object", "null"]},
            "health": {"type": "object"},
            "faults": {"type": "object"},
            "store": {"type": ["object", "null"]},
            "clients": {"type": "integer"},
            "stats": {"type": "object"},
            "progress": {"type": "object"},
            "devices": {
                "type": "array",
                "description": "Each device's link, last sample, health, faults, stats and "
                "progress, in the scenario's order (the fields above are the first one's).",
                "items": {
                    "type": "object",
                    "required": ["name", "link", "last", "health", "faults", "stats", "progress"],
                    "properties": {
                        "name": {"type": "string"},
                        "link": {"type": "object"},
                        "last": {"type": ["object", "null"]},
                        "health": {"type": "object"},
                        "faults": {"type": "object"},
                        "stats": {"type": "object"},
                        "progress": {"type": "object"},
                    },
                },
            },
        },
    },
    "Devices": {
        "type": "object",
        "required": ["run", "devices"],
        "properties": {
            "run": {"type": ["integer", "null"]},
            "devices": {"type": "array", "items": {"type": "string"}},
        },
    },
    "History": {
        "type": "object",
        "required": [*COLUMNS, "from", "to", "points", "width", "source"],
        "properties": {
            **{name: NUMBERS for name in COLUMNS},
            "from": {"type": "number"},
            "to": {"type": "number"},
            "points": {"type": "integer"},
            "width": {"type": "number"},
            "source": {"enum": ["raw", "rollup_10", "rollup_60"]},
        },
    },
    "RunRow": {
        "type": "object",
        "required": ["id", "kind", "scenario", "target", "started", "ended", "verdict"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "scenario": {"type": "string"},
            "target": {"type": ["string", "null"]},
            "seed": {"type": ["integer", "null"]},
            "firmware": {"type": ["string", "null"]},
            "boots": {"type": "array", "items": {"type": "integer"}},
            "started": {"type": "number"},
            "ended": {"type": ["number", "null"]},
            "verdict": {"type": ["string", "null"]},
        },
    },
    "Runs": {
        "type": "object",
        "required": ["runs"],
        "properties": {"runs": {"type": "array", "items": _ref("RunRow")}},
    },
    "Run": {
        "allOf": [
            _ref("RunRow"),
            {
                "type": "object",
                "required": ["record", "samples", "devices"],
                "properties": {
                    "record": {"type": ["object", "null"]},
                    "samples": SPAN,
                    "devices": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "target", "port", "firmware", "boots", "samples"],
                            "properties": {
                                "name": {"type": "string"},
                                "target": {"type": ["string", "null"]},
                                "port": {"type": ["string", "null"]},
                                "firmware": {"type": ["string", "null"]},
                                "boots": {"type": "array", "items": {"type": "integer"}},
                                "samples": SPAN,
                            },
                        },
                    },
                },
            },
        ]
    },
    "Events": {
        "type": "object",
        "required": ["run", "events"],
        "properties": {
            "run": {"type": "integer"},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "device", "t", "kind", "data"],
                    "properties": {
                        "id": {"type": "integer"},
                        "device": {"type": "string"},
                        "t": {"type": "number"},
                        "kind": {"enum": list(KINDS)},
                        "data": {},
                    },
                },
            },
        },
    },
}


def _get(summary: str, responses: dict[str, Any], *parameters: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = list(parameters)
    return {"get": operation}


PATHS: dict[str, Any] = {
    "/api/status": _get(
        "The live run's state (during a run), else the archive's mode.",
        {"200": _json("The status.", _ref("Status"))},
    ),
    "/api/history": _get(
        "Min/avg/max of V, A and W per bucket of (to - from) / points seconds, column-wise.",
        {
            "200": _json("The buckets that hold samples.", _ref("History")),
            "400": BAD,
            "404": NO_DEVICE,
            "503": UNUSABLE,
        },
        FROM,
        TO,
        _int("points", "Buckets.", 1, MAX_POINTS, 1000),
        RUN_QUERY,
        DEVICE,
    ),
    "/api/devices": _get(
        "The names of one run's devices (`run`), or of every device in the log, sorted: what "
        "`device` may name.",
        {
            "200": _json("The devices.", _ref("Devices")),
            "400": BAD,
            "404": NOT_FOUND,
            "503": UNUSABLE,
        },
        _int("run", "Only this run's devices.", 1, MAX_ID, None),
    ),
    "/api/runs": _get(
        "The runs in the log, newest first.",
        {
            "200": _json("A page of runs.", _ref("Runs")),
            "400": BAD,
            "404": NOT_FOUND,
            "503": UNUSABLE,
        },
        _int("limit", "Runs per page.", 1, 1000, 100),
        _int("offset", "Runs to skip.", 0, 2**31, 0),
    ),
    "/api/runs/{run_id}": _get(
        "One run: its row, its record and its samples' count and span.",
        {"200": _json("The run.", _ref("Run")), "404": NOT_FOUND, "503": UNUSABLE},
        RUN_PATH,
    ),
    "/api/runs/{run_id}/events": _get(
        "A run's events in order, a page at a time.",
        {
            "200": _json("A page of events.", _ref("Events")),
            "400": BAD,
            "404": NO_DEVICE,
            "503": UNUSABLE,
        },
        RUN_PATH,
        _query(
            "kinds",
            "Only these kinds (a comma list; none: every kind).",
            {"type": "array", "items": {"enum": list(KINDS)}},
            style="form",
            explode=False,
        ),
        _int("limit", "Events per page.", 1, 10_000, 1000),
        _int("after", "The last event id already seen.", 0, MAX_ID, 0),
        DEVICE,
    ),
    "/api/runs/{run_id}/report.html": _get(
        "A run's self-contained HTML report (docs/report.md), as an attachment.",
        {
            "200": {
                "description": "One HTML file that opens offline: the verdict, every "
                "expectation, the V/A/W chart, link totals, faults, commands, log and events.",
                "content": {"text/html": {"schema": {"type": "string"}}},
            },
            "404": NOT_FOUND,
            "503": UNUSABLE,
        },
        RUN_PATH,
    ),
    "/api/export.csv": _get(
        "The samples of one run (`run`), or of a span (`from`, `to`), as CSV.",
        {
            "200": {
                "description": "The samples, streamed, as an attachment.",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            "400": BAD,
            "404": NO_DEVICE,
            "503": UNUSABLE,
        },
        _int("run", "The run to export (not with from/to).", 1, MAX_ID, None),
        FROM,
        TO,
        DEVICE,
    ),
    "/api/openapi.json": _get(
        "This description.", {"200": _json("OpenAPI 3.1.", {"type": "object"})}
    ),
    "/metrics": _get(
        "The run's (or, under `harness view`, the log's) metrics for Prometheus (docs/metrics.md).",
        {
            "200": {
                "description": "Prometheus' text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    ),
}


@cache
def document() -> dict[str, Any]:
    """The description (built once; callers must not change it)."""
    return {
        "openapi": OPENAPI,
        "info": {
            "title": "powerhil viewer",
            "version": version("powerhil"),
            "description": "The live viewer's read-only HTTP API (docs/viewer.md). Every "
            "route is a GET; no answer holds NaN or Infinity.",
        },
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }
