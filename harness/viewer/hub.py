"""Fan-out to WebSocket clients with backpressure that never reaches the run.

The run publishes from synchronous bus callbacks; each client has its own bounded queue that
those callbacks fill without ever waiting, and its own task that drains it into the socket at
whatever pace the socket allows. Each time the task gets its turn it takes everything waiting
as at most one message of each type (`Client.take`): all queued samples of every device in one
`measurements` message, all events in one `events`, every device's newest stats in one
`stats`, and so on. So the messages a client is sent do not grow with the samples or the
devices, and no kind waits behind another.

A client that stops reading loses its oldest samples (each sample says how many of its
device's samples were dropped since that device's last one: `missed`), keeps only the newest
stats and progress of each device (coalesced), and loses its oldest events past a bound too.
The run, the store and the other clients never notice.

A sample or slot about a device carries its name as JSON text (`Item.device`), written into
the message as is.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

SAMPLE_QUEUE = 128
"""Samples a client may have waiting; past this its oldest are dropped."""
EVENT_QUEUE = 64
"""Events a client may have waiting; past this its oldest are dropped."""
SLOT_KINDS = ("readback", "stats", "progress")
"""The coalesced kinds, in the order a send round takes them."""


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)


class Item:
    """One published message, encoded once for every client that sends it."""

    __slots__ = ("_encode", "_text", "device", "payload")

    def __init__(
        self, payload: Any, encode: Callable[[Any], str] = dumps, device: str = ""
    ) -> None:
        self.payload = payload
        self._encode = encode
        self._text: str | None = None
        self.device = device
        """The device it is about, as JSON text (`"left"`); empty for a run's own message."""

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._encode(self.payload)
        return self._text


class Client:
    def __init__(self, sample_queue: int = SAMPLE_QUEUE, event_queue: int = EVENT_QUEUE) -> None:
        self.sample_queue = sample_queue
        self.event_queue = event_queue
        self._samples: deque[Item] = deque()
        self._events: deque[Item] = deque()
        self._slots: dict[tuple[str, str], Item] = {}
        """Coalesced messages (stats, progress, readback) by kind and device: only the newest of
        each waits. All that wait of a kind go out as one message (see `take`)."""
        self._dropped: dict[str, int] = {}
        """Samples dropped, by device, since that device's last sample this client took."""
        self.unwelcomed: set[str] = set()
        """Devices (as JSON text) whose last minute the client's hello has not taken yet: their
        samples are not queued, as the hello will have them (see `LiveState.welcome`)."""
        self.missed = 0
        """Samples dropped for this client, in all."""
        self.events_missed = 0
        self.sent = 0
        """Messages taken."""
        self.samples_sent = 0
        """Samples handed to the page (each once, in some round's `measurements`)."""
        self.closed = False
        self._wake = trio.Event()

    # --- filled from bus callbacks: never blocks ------------------------------------------

    def push_sample(self, item: Item) -> None:
        if self.unwelcomed and item.device in self.unwelcomed:
            return
        samples = self._samples
        if not samples:
            self._wake.set()  # with samples queued the task is not waiting: it drains them first
        elif len(samples) >= self.sample_queue:
            device = samples.popleft().device
            self._dropped[device] = self._dropped.get(device, 0) + 1
            self.missed += 1
        samples.append(item)

    def push_event(self, item: Item) -> None:
        if len(self._events) >= self.event_queue:
            self._events.popleft()
            self.events_missed += 1
        self._events.append(item)
        self._wake.set()

    def put_slot(self, kind: str, item: Item) -> None:
        self._slots[(kind, item.device)] = item
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    # --- drained by the client's task ------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._samples) + len(self._events) + len(self._slots)

    def _measurements(self) -> str:
        """Every queued sample, oldest first, as one `measurements` message."""
        samples, dropped = self._samples, self._dropped
        parts = []
        for item in samples:
            missed = dropped.pop(item.device, 0) if dropped else 0
            head = f'"device":{item.device},' if item.device else ""
            parts.append(f'{{{head}"missed":{missed},"data":{item.text}}}')
        self.samples_sent += len(samples)
        samples.clear()
        return '{"type":"measurements","items":[' + ",".join(parts) + "]}"

    def _events_message(self) -> str:
        texts = ",".join(item.text for item in self._events)
        self._events.clear()
        return '{"type":"events","items":[' + texts + "]}"

    def _slot_messages(self) -> list[str]:
        """The waiting stats, progress and readbacks: one message of each kind, with every
        device's newest under `devices` (by name) and a run's own under `data`."""
        by_kind: dict[str, list[Item]] = {}
        for (kind, _), item in self._slots.items():
            by_kind.setdefault(kind, []).append(item)
        self._slots.clear()
        out = []
        for kind in SLOT_KINDS:
            items = by_kind.get(kind)
            if not items:
                continue
            text = f'{{"type":"{kind}"'
            if kind == "stats":
                text += f',"client":{{"missed":{self.missed},"events_missed":{self.events_missed}}}'
            named = [f"{item.device}:{item.text}" for item in items if item.device]
            if named:
                text += ',"devices":{' + ",".join(named) + "}"
            own = [item for item in items if not item.device]
            if own:
                text += f',"data":{own[-1].text}'
            out.append(text + "}")
        return out

    def take(self) -> list[str]:
        """Everything waiting, as at most one message of each type (measurements, events,
        readback, stats, progress, in that order); empty when nothing waits. However many
        devices and samples wait, one send round takes them all: the samples never wait behind
        another device's or behind stats."""
        out = []
        if self._samples:
            out.append(self._measurements())
        if self._events:
            out.append(self._events_message())
        if self._slots:
            out.extend(self._slot_messages())
        self.sent += len(out)
        return out

    async def wait(self) -> None:
        """Until something waits to be sent (or the client is closed)."""
        if self.queued or self.closed:
            return
        await self._wake.wait()
        self._wake = trio.Event()


class Hub:
    def __init__(self, sample_queue: int = SAMPLE_QUEUE, event_queue: int = EVENT_QUEUE) -> None:
        self.sample_queue = sample_queue
        self.event_queue = event_queue
        self.clients: set[Client] = set()
        self._empty = trio.Event()
        """Set while no client is connected."""
        self._empty.set()

    def add(self) -> Client:
        client = Client(self.sample_queue, self.event_queue)
        self.clients.add(client)
        if self._empty.is_set():
            self._empty = trio.Event()
        return client

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        if not self.clients:
            self._empty.set()

    async def wait_empty(self) -> None:
        """Until no client is connected."""
        await self._empty.wait()

    def sample(self, data: Any, encode: Callable[[Any], str] = dumps, device: str = "") -> None:
        """`encode` turns `data` into JSON text, once, when a client first sends it; `device`
        is the device's name as JSON text."""
        if self.clients:
            item = Item(data, encode, device)
            for c in self.clients:
                c.push_sample(item)

    def event(self, data: dict[str, Any], device: str = "") -> None:
        if self.clients:
            item = Item(data, dumps, device)
            for c in self.clients:
                c.push_event(item)

    def slot(self, kind: str, data: dict[str, Any], device: str = "") -> None:
        """A message where only the newest matters (stats, progress), of each device."""
        if self.clients:
            self.slots(kind, [Item(data, dumps, device)])

    def slots(self, kind: str, items: list[Item]) -> None:
        """Several devices' newest of a kind at once (a tick's), so that a client takes them
        in one message."""
        for c in self.clients:
            for item in items:
                c.put_slot(kind, item)

    def close_all(self) -> None:
        for c in self.clients:
            c.close()
