"""The viewer's read-only access to the log: every query runs in a worker thread on its own
read-only connection (SQLite in WAL mode lets it read while the run writes), and CSV downloads
stream in chunks with backpressure, so a 48-hour export never sits in memory."""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from harness.store import queries
from harness.store.db import open_for_reading
from harness.store.export import export_run, export_span

if TYPE_CHECKING:
    from harness.report.render import UPlot

T = TypeVar("T")
CHUNK = 64 * 1024
"""Bytes of CSV per chunk of a download."""
AHEAD = 4
"""Chunks the exporting thread may be ahead of the client."""


class Archive:
    def __init__(self, path: Path) -> None:
        self.path = path

    def check(self) -> None:
        """Raise UserError now if the database cannot be read (blocking: call it at startup)."""
        open_for_reading(self.path).close()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        def work() -> T:
            conn = open_for_reading(self.path)
            try:
                return fn(conn, *args)
            finally:
                conn.close()

        return await trio.to_thread.run_sync(work)

    async def history(
        self, t_from: float, t_to: float, points: int, run: int | None, device: str | None
    ) -> dict[str, Any]:
        return await self.call(queries.history, t_from, t_to, points, run, device)

    async def devices(self, run: int | None) -> list[str]:
        """The names of one run's devices, or of every device in the log, sorted."""
        return await self.call(queries.device_names, run)

    async def unknown_device(self, device: str, run: int | None) -> str | None:
        """None if the log (or the run) has the device, else which devices it has."""
        return await self.call(queries.unknown_device, device, run)

    async def runs(self, limit: int, offset: int) -> list[dict[str, Any]]:
        return await self.call(queries.runs, limit, offset)

    async def run(self, run_id: int) -> dict[str, Any] | None:
        return await self.call(queries.run, run_id)

    async def events(
        self, run_id: int, kinds: tuple[str, ...], limit: int, after: int, device: str | None
    ) -> list[dict[str, Any]]:
        return await self.call(queries.events, run_id, kinds, limit, after, device)

    async def report(self, run_id: int, uplot: UPlot) -> str | None:
        """The run's HTML report (None: no such run); the report's modules load at the first."""
        from harness.viewer.runreport import report_html

        return await self.call(report_html, run_id, uplot)

    def csv(
        self, run: int | None, t_from: float, t_to: float, device: str | None
    ) -> AsyncIterator[bytes]:
        """The CSV of one run, or of a span (of one device, or of all), as it is read."""
        return _stream(self.path, run, t_from, t_to, device)


class _Chunks:
    """A text stream the export writes to from its thread; full chunks go to the queue and wait
    there while the client is slow (AHEAD of them at most)."""

    def __init__(self, out: queue.Queue[bytes | BaseException | None], stop: threading.Event):
        self.out = out
        self.stop = stop
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= CHUNK:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.parts:
            data = "".join(self.parts).encode()
            self.parts, self.size = [], 0
            while True:
                if self.stop.is_set():
                    raise _Abandoned
                try:
                    self.out.put(data, timeout=0.1)
                    return
                except queue.Full:
                    continue


class _Abandoned(Exception):
    """The client went away: the export stops."""


async def _stream(
    path: Path, run: int | None, t_from: float, t_to: float, device: str | None
) -> AsyncIterator[bytes]:
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def export() -> None:
        sink = _Chunks(chunks, stop)
        try:
            conn = open_for_reading(path)
            try:
                if run is not None:
                    export_run(conn, run, sink, device)  # type: ignore[arg-type]
                else:
                    export_span(conn, t_from, t_to, sink, device)  # type: ignore[arg-type]
                sink.flush()
            finally:
                conn.close()
        except _Abandoned:
            return
        except BaseException as exc:  # handed to the reader, which raises it
            chunks.put(exc)
            return
        chunks.put(None)

    thread = threading.Thread(target=export, name="viewer-csv", daemon=True)
    thread.start()
    try:
        while True:
            item = await trio.to_thread.run_sync(chunks.get, abandon_on_cancel=True)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
