"""Hypercorn's connections on sockets the viewer can cut.

Hypercorn writes to a client inside a shielded cancel scope, so a client that stops reading
holds that write, its connection and every nursery around it for as long as it stays connected:
no timeout and no cancellation reaches a shielded wait. Closing the socket does: trio wakes
whatever waits on a socket that is closed, shielded or not, with ClosedResourceError, and
Hypercorn takes that as the client gone. So the viewer runs Hypercorn's own connection handler
(`TCPServer`) on an accept loop of its own (`Server`) that keeps every connection, and

- a WebSocket handler bounds each send (`SendLimit`): a send not done within SEND_TIMEOUT cuts
  its connection, so that client is dropped and nothing else waits for it;
- Hypercorn refuses a WebSocket message over MAX_MESSAGE with close code 1009 but goes on
  reading the rest of it into memory, so a WebSocket client may have at most INCOMING_BUDGET
  bytes on the wire that did not become a message its handler took; past that the connection
  is cut (`Connection.limit_incoming`);
- when the server is cancelled (its grace period after `stop` is over, or anything around it is
  cancelled) it cuts every connection still open, so nothing shielded outlives it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

if TYPE_CHECKING:
    from quart_trio import QuartTrio

SEND_TIMEOUT = 5.0
"""Seconds one WebSocket message may take to be handed to the client's socket. A page that
reads keeps the socket's buffer free, so only a client that stopped reading (or a network that
stopped carrying) gets near it; the limit leaves a slow network time for the largest message,
`hello` with the last minute of samples."""
MAX_MESSAGE = 4096
"""Bytes a WebSocket message from a client may have (Hypercorn's websocket_max_message_size):
the viewer takes no orders, so the page sends nothing, and anything larger is closed with 1009."""
INCOMING_BUDGET = 256 * 1024
"""Bytes a WebSocket client may have sent that did not become a message its handler took
(control frames count too). Messages of at most MAX_MESSAGE never reach it: Hypercorn stops
reading while about 20 of them wait for the handler (its queue and Quart's), and one read is at
most 64 KiB."""
CONNECTION = "powerhil.connection"
"""The key of a request's `Connection` in its ASGI scope's `state`."""


class Connection:
    """One client's TCP connection: the stream Hypercorn reads and writes, which the viewer can
    cut. It has no `do_handshake`, which Hypercorn takes to mean a plain (not TLS) stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.socket = stream.socket
        self.cut_off = False
        self._budget = math.inf
        self._unread = 0

    def cut(self) -> None:
        """Close the socket now: every wait on it ends (ClosedResourceError), shielded or not;
        Hypercorn then closes the connection and tells the application the client went away."""
        self.cut_off = True
        self.socket.close()

    def limit_incoming(self, budget: int) -> None:
        """From now on, at most `budget` bytes may come in that no message taken accounts for."""
        self._budget = budget
        self._unread = 0

    def took_message(self) -> None:
        """The handler took a message: what came in before it is accounted for."""
        self._unread = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.stream.receive_some(max_bytes)
        self._unread += len(data)
        if self._unread > self._budget:
            self.cut()
            raise trio.ClosedResourceError("the client sent more than the viewer reads")
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


def connection_of(scope: Mapping[str, Any]) -> Connection | None:
    """The connection an ASGI request came on, when `Server` serves it."""
    state = scope.get("state")
    found = state.get(CONNECTION) if isinstance(state, Mapping) else None
    return found if isinstance(found, Connection) else None


class SendLimit:
    """Bounds every send of one connection to `seconds`: `with limit: await send(...)`. A send
    that has not returned by then is past waiting for (it may sit in Hypercorn's shielded write),
    so `watch`, run beside the sends, calls `cut` and returns."""

    __slots__ = ("_cut", "_deadline", "_timer", "seconds")

    def __init__(self, seconds: float, cut: Callable[[], None]) -> None:
        self.seconds = seconds
        self._cut = cut
        self._deadline = math.inf
        """When the send under way is overdue (inf: none is under way)."""
        self._timer = trio.CancelScope()

    def __enter__(self) -> None:
        self._deadline = self._timer.deadline = trio.current_time() + self.seconds

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._deadline = self._timer.deadline = math.inf

    async def watch(self) -> None:
        while True:
            self._timer = trio.CancelScope(deadline=self._deadline)
            with self._timer:
                await trio.sleep_forever()
            # The timer fires at the deadline of the send it was set for; that send may have
            # returned since (then the deadline is another send's, or inf) and nothing is due.
            if trio.current_time() >= self._deadline:
                self._cut()
                return


class Server:
    """Hypercorn's HTTP/1.1 and WebSocket handling (`config.bind`, no TLS) on connections this
    server keeps (see the module's text). `serve` answers until `stop`, then gives the open
    connections `config.graceful_timeout` seconds and cuts what is left."""

    def __init__(self, app: QuartTrio, config: Config) -> None:
        self.app = wrap_app(app, config.wsgi_max_body_size, "asgi")
        self.config = config
        self.connections: set[Connection] = set()
        self._none_open = trio.Event()
        """Set while no connection is open."""
        self._none_open.set()
        self._cutting = False

    async def serve(
        self, stop: trio.Event, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen (a binding error is an OSError, raised before `task_status.started(binds)`)
        and answer until `stop`."""
        config = self.config
        sockets = config.create_sockets().insecure_sockets
        listeners = []
        for sock in sockets:
            sock.listen(config.backlog)
            listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
        binds = [f"http://{repr_socket_addr(s.family, s.getsockname())}" for s in sockets]
        state: dict[str, Any] = {}
        lifespan = Lifespan(self.app, config, state)
        context = WorkerContext(None)
        not_accepting = trio.Event()
        async with trio.open_nursery() as lifespan_nursery:
            await lifespan_nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            async with trio.open_nursery() as handlers:
                handlers.start_soon(self._close_or_cut, not_accepting)
                handle = partial(self._handle, context, state)
                async with trio.open_nursery() as accepting:
                    accepting.start_soon(
                        partial(trio.serve_listeners, handle, listeners, handler_nursery=handlers)
                    )
                    task_status.started(binds)
                    await stop.wait()
                    accepting.cancel_scope.cancel()  # closes the listeners: the port is free
                not_accepting.set()
                await context.terminated.set()  # idle keep-alive connections close now
                handlers.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
            with trio.move_on_after(config.graceful_timeout):
                await lifespan.wait_for_shutdown()
            lifespan_nursery.cancel_scope.cancel()

    async def _handle(
        self, context: WorkerContext, state: dict[str, Any], stream: trio.SocketStream
    ) -> None:
        connection = Connection(stream)
        self.connections.add(connection)
        if self._none_open.is_set():
            self._none_open = trio.Event()
        try:
            if self._cutting:  # accepted while the server was being cancelled
                connection.cut()
            scope_state = ConnectionState({**state, CONNECTION: connection})
            server = TCPServer(self.app, self.config, context, scope_state, connection)  # type: ignore[arg-type]
            await server.run()
        finally:
            self.connections.discard(connection)
            if not self.connections:
                self._none_open.set()

    async def _close_or_cut(self, not_accepting: trio.Event) -> None:
        """Keeps the handlers' nursery open until the server stops accepting and every
        connection has closed; if that nursery is cancelled first (the grace period is over,
        or the server is cancelled), cuts every connection still open."""
        try:
            await not_accepting.wait()
            while self.connections:
                await self._none_open.wait()
        finally:
            self._cutting = True
            for connection in list(self.connections):
                connection.cut()
