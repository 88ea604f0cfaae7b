"""Serving the viewer with Hypercorn inside trio: as a run extension (`harness run`, `harness
monitor`) in the run's own nursery, or on its own over the log (`harness view`). Either way a
trio Event stops it: the pages get their last stats and the end, the sockets close, the port is
free. Hypercorn runs on connections the viewer can cut (`transport`), so a client that stops
reading never holds the end of a run: the run extension returns within SHUTDOWN_DEADLINE
seconds of the run's end whatever its clients do."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import trio
from hypercorn.config import Config

from harness.errors import UserError, found_in
from harness.runner.context import Extension, RunContext
from harness.signals import stop_on_signal
from harness.viewer import assets
from harness.viewer.app import create_app
from harness.viewer.archive import Archive
from harness.viewer.live import LiveState
from harness.viewer.options import NOT_SERVED, parse_bind
from harness.viewer.transport import MAX_MESSAGE, Server

if TYPE_CHECKING:
    from quart_trio import QuartTrio

CLOSE_WAIT = 0.5
"""Seconds the pages get to take their last messages when the run ends."""
GRACEFUL = 1.0
"""Seconds the server then gives open connections (requests, pages' sockets) to finish before
it cuts them."""
SHUTDOWN_DEADLINE = 2.0
"""Seconds from the run's end (or from `stop` under `harness view`) until the viewer has
returned, whatever its clients do: CLOSE_WAIT and GRACEFUL, then whatever is left is cancelled,
and cancelling the server cuts every connection it still has."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host: str, port: int, err: TextIO) -> None:
    """Binding beyond loopback is allowed (a phone on the bench's network) but said aloud."""
    if not is_loopback(host):
        print(
            f"viewer: warning: serving on {host}:{port}, which other machines can reach; it is "
            f"read-only but shows everything the harness measures (--bind 127.0.0.1:{port} keeps it local)",
            file=err,
            flush=True,
        )


def _config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = GRACEFUL
    config.websocket_max_message_size = MAX_MESSAGE
    return config


def _bind_error(host: str, port: int, exc: OSError, in_run: bool) -> UserError:
    where = f"--bind {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return UserError(
            f"{where}: address already in use (another viewer?); use another port, e.g. --bind {host}:{port + 1}"
            + (", or --no-view" if in_run else "")
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return UserError(f"{where}: not an address of this machine; try 127.0.0.1")
    if exc.errno == errno.EACCES:
        return UserError(f"{where}: permission denied (ports below 1024 need root); use 8000")
    if isinstance(exc, socket.gaierror):
        return UserError(f"{where}: unknown host name; use an address such as 127.0.0.1")
    return UserError(f"{where}: cannot listen there: {exc.strerror or exc}")


def _url(bound: str, host: str) -> str:
    """The address to print: the bound one, or this machine's name for a wildcard bind."""
    if host in ("0.0.0.0", "::"):
        port = bound.rsplit(":", 1)[1]
        return f"http://{socket.gethostname()}:{port}/"
    return f"{bound}/"


class _Started:
    """Hypercorn's task status, remembering whether it got as far as listening."""

    def __init__(self, task_status: trio.TaskStatus[list[str]]) -> None:
        self.task_status = task_status
        self.listening = False

    def started(self, binds: list[str]) -> None:
        self.listening = True
        self.task_status.started(binds)


async def _serve(
    app: QuartTrio,
    config: Config,
    stop: trio.Event,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Hypercorn until `stop`. Failing to listen is the caller's error; failing later stops the
    viewer, never the run around it."""
    status = _Started(task_status)
    try:
        await Server(app, config).serve(stop, task_status=status)  # type: ignore[arg-type]
    except Exception as exc:
        if not status.listening:
            raise
        print(
            f"viewer: the server stopped after an error ({exc!r}); the run goes on", file=sys.stderr
        )


async def start_server(
    nursery: trio.Nursery,
    app: QuartTrio,
    host: str,
    port: int,
    stop: trio.Event,
    err: TextIO | None = None,
    in_run: bool = True,
) -> str:
    """Hypercorn in `nursery` until `stop` is set; returns the URL once it listens. Only then is
    a bind beyond loopback warned of (an address it cannot listen on is an error, not a
    warning)."""
    try:
        binds = await nursery.start(_serve, app, _config(host, port), stop)
    except BaseException as exc:
        found = found_in(exc, OSError)
        if found is None:
            raise
        raise _bind_error(host, port, found, in_run) from None
    warn_if_exposed(host, port, err or sys.stderr)
    return _url(binds[0], host)


def _warn_missing_assets(err: TextIO) -> None:
    gone = assets.missing()
    if gone:
        print(
            f"viewer: warning: {gone[0]} is missing (run `make web-assets`); pages will not draw",
            file=err,
            flush=True,
        )


def viewer(
    bind: str,
    db: Path | None = None,
    err: TextIO | None = None,
    on_start: Callable[[str, LiveState], None] | None = None,
) -> Extension:
    """The run extension: serve the live viewer on `bind` while the run lasts, with the history
    and past runs of the log at `db`. `on_start(url, live)` is told where it listens (tests bind
    port 0)."""
    host, port = parse_bind(bind)

    @asynccontextmanager
    async def extension(ctx: RunContext) -> AsyncIterator[None]:
        out = ctx.options.out
        if ctx.options.fast:
            print(NOT_SERVED, file=out, flush=True)
            yield
            return
        errors = err or sys.stderr
        _warn_missing_assets(errors)
        live = LiveState(ctx)
        app = create_app(live, db, hosts={host})
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            url = await start_server(nursery, app, host, port, stop, errors)
            print(f"viewer: {url}", file=out, flush=True)
            if on_start is not None:
                on_start(url, live)
            unsubscribe = ctx.bus.subscribe(live.take)
            nursery.start_soon(live.run)
            try:
                yield
            finally:
                unsubscribe()
                nursery.cancel_scope.deadline = trio.current_time() + SHUTDOWN_DEADLINE
                with trio.CancelScope(shield=True):  # bounded: a tick of every device
                    await live.finish()
                live.hub.close_all()
                # Shielded, so that the pages get the end even when the run was cancelled (an
                # error, Ctrl-C); bounded, so that a page cannot hold the end.
                with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_WAIT):
                    await live.hub.wait_empty()
                stop.set()

    return extension


async def serve_archive(
    db: Path,
    bind: str,
    out: TextIO,
    err: TextIO,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """`harness view`: history and past runs from the log, until Ctrl-C/SIGTERM (or `stop`)."""
    host, port = parse_bind(bind)
    archive = Archive(db)
    await trio.to_thread.run_sync(archive.check)
    _warn_missing_assets(err)
    app = create_app(None, db, hosts={host})
    stop = stop or trio.Event()
    async with trio.open_nursery() as nursery:
        url = await start_server(nursery, app, host, port, stop, err, in_run=False)
        print(f"viewer: {url} (history and runs from {db}; Ctrl-C stops)", file=out, flush=True)
        task_status.started(url)
        async with trio.open_nursery() as waiting:
            await waiting.start(stop_on_signal, stop)
            await stop.wait()
            waiting.cancel_scope.cancel()
        nursery.cancel_scope.deadline = trio.current_time() + SHUTDOWN_DEADLINE


def view(db: Path, bind: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        trio.run(serve_archive, db, bind, out, err)
    except BaseExceptionGroup as group:
        if (error := found_in(group, UserError)) is not None:
            raise error from None
        raise
    return 0
