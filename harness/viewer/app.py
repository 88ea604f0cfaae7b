"""The viewer's web application (quart-trio): pages, the JSON API, CSV downloads and the live
WebSocket. Every route is a GET (or the WebSocket, whose incoming messages are read and
ignored): nothing here can reach the device. docs/viewer.md documents the API."""

from __future__ import annotations

import ipaddress
import math
import socket
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio
from quart import Response, abort, redirect, render_template, request, send_from_directory
from quart import websocket as ws
from quart.json.provider import DefaultJSONProvider
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from harness.errors import UserError
from harness.runner import bus
from harness.store.queries import MAX_POINTS
from harness.viewer import assets
from harness.viewer.archive import Archive
from harness.viewer.hub import Client, dumps
from harness.viewer.live import LiveState, clean
from harness.viewer.transport import (
    INCOMING_BUDGET,
    SEND_TIMEOUT,
    Connection,
    SendLimit,
    connection_of,
)

if TYPE_CHECKING:
    from harness.report.render import UPlot
    from harness.viewer.metrics import Exporter

HISTORY_DEFAULT_SPAN = 3600.0
HISTORY_DEFAULT_POINTS = 1000
MAX_TIME = 253_402_300_799.0
"""The last second a time parameter may name (9999-12-31T23:59:59Z): the latest an ISO 8601
time can say and a file name can be made of; 0 (1970) is the earliest. The log holds nothing
outside, and anything outside is refused rather than read as a span of no rows."""
MAX_ID = 2**63 - 1
"""The largest id SQLite can store: a larger run id names no run."""
NO_DB = "no database: this run is not logged (run it with --db PATH)"


class BadParameter(Exception):
    """A query parameter the API cannot use: 400 with this message."""


# --- Host and Origin ----------------------------------------------------------------------


def _hostname(host: str) -> str:
    """The name part of a Host header value ("[::1]:8000" -> "::1")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def local_names() -> set[str]:
    name = socket.gethostname().lower()
    return {"localhost", name, f"{name}.local"}


def host_allowed(host: str | None, names: set[str]) -> bool:
    """A Host header the viewer answers: an IP address, localhost, or this machine's name.
    Any other name means a page got here by a DNS name the user did not type (rebinding)."""
    if not host:
        return False
    name = _hostname(host)
    if name in names or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """A WebSocket's Origin must be the viewer's own page (same scheme-less host:port). No
    Origin at all is a program, not a browser page: it may connect."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not host:
        return False
    return parts.netloc.lower() == host.strip().lower()


# --- parameters ---------------------------------------------------------------------------


def _time(name: str, default: float | None) -> float:
    """Unix seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    text = request.args.get(name)
    if text is None or text == "":
        if default is None:
            raise BadParameter(f"{name}: required (unix seconds or an ISO 8601 time)")
        return default
    try:
        value = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise BadParameter(
                f"{name}={text!r}: expected unix seconds or an ISO 8601 time"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        value = when.timestamp()
    if not math.isfinite(value):
        raise BadParameter(f"{name}={text!r}: expected a finite time")
    if not 0 <= value <= MAX_TIME:
        raise BadParameter(
            f"{name}={text!r}: out of range; unix seconds 0..{MAX_TIME:.0f} (1970 to 9999)"
        )
    return value


def _int(name: str, default: int | None, lo: int, hi: int) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadParameter(f"{name}={text!r}: expected an integer") from None
    if not lo <= value <= hi:
        raise BadParameter(f"{name}={value}: must be {lo}..{hi}")
    return value


def _span() -> tuple[float, float]:
    given = request.args.get("from", "") != ""
    t_from = _time("from", None) if given else 0.0  # read first: its error is the one told
    t_to = _time("to", time.time())
    if not given:
        t_from = max(t_to - HISTORY_DEFAULT_SPAN, 0.0)
    if t_to <= t_from:
        raise BadParameter("to must be after from")
    return t_from, t_to


def _kinds() -> tuple[str, ...]:
    text = request.args.get("kinds", "")
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in bus.KINDS]
    if unknown:
        raise BadParameter(f"kinds: unknown {', '.join(unknown)}; known: {', '.join(bus.KINDS)}")
    return kinds


def _device() -> str | None:
    """The `device` parameter: a device's name, or None (every device)."""
    return request.args.get("device") or None


def _no_such_run(run_id: int) -> tuple[dict[str, str], int]:
    return {"error": f"run {run_id}: no such run"}, 404


def _no_such_device(device: str, problem: str) -> tuple[dict[str, str], int]:
    return {"error": f"device={device}: {problem}"}, 404


def _file_safe(name: str) -> str:
    """A device's name as part of a download's file name (letters, digits, `-`, `_`, `.`)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)


class FiniteJSON(DefaultJSONProvider):
    """Every JSON answer is JSON: a non-finite number (NaN and Infinity are not JSON, and a
    page's JSON.parse refuses them) is written as null. Answers without one, nearly all, are
    written in one pass; the check is json's own (allow_nan=False)."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs["allow_nan"] = False
        try:
            return super().dumps(obj, **kwargs)
        except ValueError:
            return super().dumps(clean(obj), **kwargs)


# --- the application ----------------------------------------------------------------------


def create_app(
    live: LiveState | None = None,
    db: Path | None = None,
    hosts: set[str] | None = None,
    send_timeout: float = SEND_TIMEOUT,
) -> QuartTrio:
    """The viewer: `live` during a run (else only history and past runs), `db` the log to read
    (None: a run without a database), `hosts` extra names the Host header may carry,
    `send_timeout` the seconds a page may take to accept one WebSocket message."""
    root = assets.web_root()
    app = QuartTrio(
        __name__,
        template_folder=str(root / "templates"),
        static_folder=None,
        root_path=str(assets.PACKAGE),
    )
    app.json = FiniteJSON(app)
    archive = Archive(db) if db is not None else None
    names = local_names() | {h.lower() for h in hosts or ()}
    mode = "live" if live is not None else "archive"
    uplots: list[UPlot] = []
    """uPlot for the run reports, read at the first one asked for."""
    exporters: list[Exporter] = []
    """The metrics' exporter, made at the first scrape: prometheus-client is loaded only by a
    page that asks for /metrics, so a run nobody scrapes does not hold it."""

    def need_archive() -> Archive:
        if archive is None:
            abort(Response(dumps({"error": NO_DB}), 404, mimetype="application/json"))
        return archive

    @app.errorhandler(BadParameter)
    async def bad_parameter(exc: BadParameter) -> tuple[dict[str, str], int]:
        return {"error": str(exc)}, 400

    @app.errorhandler(UserError)
    async def unusable_database(exc: UserError) -> tuple[dict[str, str], int]:
        return {"error": str(exc)}, 503

    @app.errorhandler(sqlite3.Error)
    async def database_error(exc: sqlite3.Error) -> tuple[dict[str, str], int]:
        return {"error": f"database: {exc}"}, 503

    @app.errorhandler(404)
    @app.errorhandler(405)
    async def api_not_here(exc: HTTPException) -> Any:
        """Under /api/ every answer is JSON, also for a path or method the API does not have."""
        path = request.path
        if not path.startswith("/api/"):
            return exc
        if isinstance(exc, MethodNotAllowed):
            allow = {"Allow": ", ".join(sorted(exc.valid_methods or ()))}
            return (
                {"error": f"{request.method} {path}: not allowed (every route is a GET)"},
                405,
                allow,
            )
        return {"error": f"{path}: no such route (/api/openapi.json lists them)"}, 404

    @app.before_request
    async def check_host() -> Any:
        if not host_allowed(request.headers.get("Host"), names):
            return Response("host not allowed\n", 403, mimetype="text/plain")
        return None

    @app.after_request
    async def headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # --- pages ----------------------------------------------------------------------------

    async def page(name: str, **context: Any) -> str:
        return await render_template(f"{name}.html", page=name, mode=mode, **context)

    @app.get("/")
    async def live_page() -> Any:
        if live is None:
            return redirect("/runs")
        return await page("live")

    @app.get("/history")
    async def history_page() -> str:
        return await page("history")

    @app.get("/runs")
    async def runs_page() -> str:
        return await page("runs")

    @app.get("/runs/<int:run_id>")
    async def run_page(run_id: int) -> str:
        return await page("run", run_id=run_id)

    @app.get("/static/vendor/<path:name>")
    async def vendor(name: str) -> Response:
        return await send_from_directory(assets.VENDOR, name)

    @app.get("/static/<path:name>")
    async def static(name: str) -> Response:
        return await send_from_directory(root / "static", name)

    # --- API ------------------------------------------------------------------------------

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        out = await live.status() if live is not None else {"mode": "archive"}
        out["db"] = None if db is None else str(db)
        out["time"] = round(time.time(), 3)
        return out

    @app.get("/api/history")
    async def history() -> dict[str, Any]:
        t_from, t_to = _span()
        points = _int("points", HISTORY_DEFAULT_POINTS, 1, MAX_POINTS)
        run = _int("run", None, 1, MAX_ID)
        device = _device()
        assert points is not None
        archive = need_archive()
        if device is not None and (problem := await archive.unknown_device(device, run)):
            return _no_such_device(device, problem)
        return await archive.history(t_from, t_to, points, run, device)

    @app.get("/api/devices")
    async def devices() -> Any:
        run_id = _int("run", None, 1, MAX_ID)
        archive = need_archive()
        if run_id is not None and await archive.run(run_id) is None:
            return _no_such_run(run_id)
        return {"run": run_id, "devices": await archive.devices(run_id)}

    @app.get("/api/runs")
    async def runs() -> dict[str, Any]:
        limit = _int("limit", 100, 1, 1000)
        offset = _int("offset", 0, 0, 2**31)
        assert limit is not None and offset is not None
        return {"runs": await need_archive().runs(limit, offset)}

    @app.get("/api/runs/<int:run_id>")
    async def run(run_id: int) -> Any:
        archive = need_archive()
        found = await archive.run(run_id) if run_id <= MAX_ID else None
        if found is None:
            return _no_such_run(run_id)
        return found

    @app.get("/api/runs/<int:run_id>/events")
    async def events(run_id: int) -> Any:
        kinds = _kinds()
        limit = _int("limit", 1000, 1, 10_000)
        after = _int("after", 0, 0, MAX_ID)
        device = _device()
        assert limit is not None and after is not None
        archive = need_archive()
        if run_id > MAX_ID or await archive.run(run_id) is None:
            return _no_such_run(run_id)
        if device is not None and (problem := await archive.unknown_device(device, run_id)):
            return _no_such_device(device, problem)
        return {"run": run_id, "events": await archive.events(run_id, kinds, limit, after, device)}

    @app.get("/api/runs/<int:run_id>/report.html")
    async def run_report(run_id: int) -> Any:
        archive = need_archive()
        if not uplots:
            from harness.report.render import load_uplot  # the report's modules: at first use

            uplots.append(load_uplot(assets.VENDOR))  # once; missing: the 503 names the fix
        html = await archive.report(run_id, uplots[0]) if run_id <= MAX_ID else None
        if html is None:
            return _no_such_run(run_id)
        response = Response(html, mimetype="text/html")
        name = f"powerhil-run-{run_id}.html"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @app.get("/api/export.csv")
    async def export_csv() -> Any:
        archive = need_archive()
        run_id = _int("run", None, 1, MAX_ID)
        device = _device()
        if run_id is not None:
            if "from" in request.args or "to" in request.args:
                raise BadParameter("give run, or from and to, not both")
            if await archive.run(run_id) is None:
                return _no_such_run(run_id)
            name = f"powerhil-run-{run_id}.csv"
            t_from = t_to = 0.0
        else:
            if "from" not in request.args:
                raise BadParameter("give run=ID, or from (and to, default now)")
            t_from, t_to = _span()
            stamp = datetime.fromtimestamp(t_from, UTC).strftime("%Y%m%dT%H%M%SZ")
            name = f"powerhil-{stamp}-{round(t_to - t_from)}s.csv"
        if device is not None:
            if problem := await archive.unknown_device(device, run_id):
                return _no_such_device(device, problem)
            name = name.replace("powerhil-", f"powerhil-{_file_safe(device)}-", 1)
        response = Response(archive.csv(run_id, t_from, t_to, device), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        response.timeout = None  # a big export takes as long as it takes
        return response

    @app.get("/api/openapi.json")
    async def openapi() -> dict[str, Any]:
        from harness.viewer.openapi import document  # it reads this module's bounds

        return document()

    @app.get("/metrics")
    async def metrics() -> Response:
        from harness.viewer.metrics import CONTENT_TYPE, Exporter

        if not exporters:
            exporters.append(Exporter(live, archive))
        return Response(await exporters[0].render(), content_type=CONTENT_TYPE)

    # --- the live WebSocket ---------------------------------------------------------------

    @app.websocket("/ws")
    async def live_socket() -> Any:
        host = ws.headers.get("Host")
        if not host_allowed(host, names) or not origin_allowed(ws.headers.get("Origin"), host):
            return Response("origin not allowed\n", 403, mimetype="text/plain")
        if live is None:
            return Response("no live run here (harness view serves history)\n", 404)
        client = live.hub.add()
        hello = await live.welcome(client)
        try:
            await _stream(client, hello, send_timeout)
        finally:
            live.hub.remove(client)
        return None

    return app


async def _stream(client: Client, hello: str, send_timeout: float) -> None:
    """The live messages to one page, each send bounded by `send_timeout`: a page that does not
    take one in time is dropped (its connection cut; on a server without `Connection`s the
    handler is cancelled, which is enough where sends are not shielded)."""
    connection = connection_of(ws.scope)
    async with trio.open_nursery() as nursery:
        cut = nursery.cancel_scope.cancel if connection is None else connection.cut
        limit = SendLimit(send_timeout, cut)
        nursery.start_soon(limit.watch)
        with limit:
            await ws.accept()
        if connection is not None:
            connection.limit_incoming(INCOMING_BUDGET)
        nursery.start_soon(_ignore_incoming, connection)
        with limit:
            await ws.send(hello)
        await _send_queued(client, limit)
        with limit:
            await ws.close(1001, "the run has ended")
        nursery.cancel_scope.cancel()


async def _ignore_incoming(connection: Connection | None) -> None:
    """Read what the page sends and drop it (the viewer takes no orders); keeps a closed
    connection noticed, and tells the connection each message was taken (its incoming budget).
    A message over MAX_MESSAGE never gets here: Hypercorn closes with 1009."""
    while True:
        await ws.receive()
        if connection is not None:
            connection.took_message()


async def _send_queued(client: Client, limit: SendLimit) -> None:
    while True:
        await client.wait()
        texts = client.take()
        for text in texts:
            with limit:
                await ws.send(text)
        if not texts and client.closed:
            return
