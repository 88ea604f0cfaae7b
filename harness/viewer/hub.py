"""Fan-out to WebSocket clients with backpressure that never reaches the run.

The run publishes from synchronous bus callbacks; each client has its own bounded queue that
those callbacks fill without ever waiting, and its own task that drains it into the socket at
whatever pace the socket allows. A client that stops reading loses its oldest samples (each
sample message says how many of its device's samples were dropped since that device's last
one: `missed`), keeps only the newest stats and progress of each device (coalesced in place),
and loses its oldest events past a bound too. The run, the store and the other clients never
notice.

A message about a device names it: its item carries the name as JSON text (`Item.device`),
written into the message as `"device":NAME` right after its type.
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


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)


class Item:
    """One published message, encoded once for every client that sends it."""

    __slots__ = ("_encode", "_text", "counter", "device", "head", "payload")

    def __init__(
        self,
        counter: int,
        payload: Any,
        encode: Callable[[Any], str] = dumps,
        device: str = "",
    ) -> None:
        self.counter = counter
        self.payload = payload
        self._encode = encode
        self._text: str | None = None
        self.device = device
        """The device it is about, as JSON text (`"left"`); empty for a run's own message."""
        self.head = f',"device":{device}' if device else ""
        """What the message says after its type: its device, if it has one."""

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
        self._slots: dict[tuple[str, str], tuple[int, Item]] = {}
        """Coalesced messages (stats, progress, readback) by kind and device: the newest content
        at the oldest position. A key keeps its place in the dict while it waits and a new key
        comes with a higher counter than any waiting, so the dict's order is the order of
        their positions: the first is the oldest."""
        self._dropped: dict[str, int] = {}
        """Samples dropped, by device, since that device's last sample message this client
        took."""
        self.missed = 0
        """Samples dropped for this client, in all."""
        self.events_missed = 0
        self.sent = 0
        self.closed = False
        self._wake = trio.Event()

    # --- filled from bus callbacks: never blocks ------------------------------------------

    def push_sample(self, item: Item) -> None:
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
        key = (kind, item.device)
        old = self._slots.get(key)
        place = item.counter if old is None else old[0]  # keep its place in line
        self._slots[key] = (place, item)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    # --- drained by the client's task ------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._samples) + len(self._events) + len(self._slots)

    def _measurement(self, item: Item) -> str:
        missed = self._dropped.pop(item.device, 0) if self._dropped else 0
        return f'{{"type":"measurement"{item.head},"missed":{missed},"data":{item.text}}}'

    def take(self) -> str | None:
        """The oldest waiting message as text, or None when nothing waits."""
        if self._samples and not self._events and not self._slots:  # the common case
            self.sent += 1
            return self._measurement(self._samples.popleft())
        best: Item | None = None
        place = 0
        source = ""
        if self._samples:
            best, source = self._samples[0], "sample"
            place = best.counter
        if self._events and (best is None or self._events[0].counter < place):
            best, source = self._events[0], "event"
            place = best.counter
        slot: tuple[str, str] | None = None
        if self._slots:
            key, (counter, item) = next(iter(self._slots.items()))  # the oldest (see _slots)
            if best is None or counter < place:
                best, source, slot = item, key[0], key
        if best is None:
            return None
        if source == "sample":
            self._samples.popleft()
            text = self._measurement(best)
        elif source == "event":
            self._events.popleft()
            text = f'{{"type":"event"{best.head},"data":{best.text}}}'
        else:
            assert slot is not None
            del self._slots[slot]
            extra = ""
            if source == "stats":
                extra = f',"client":{{"missed":{self.missed},"events_missed":{self.events_missed}}}'
            text = f'{{"type":"{source}"{best.head}{extra},"data":{best.text}}}'
        self.sent += 1
        return text

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
        self._counter = 0
        self._empty = trio.Event()
        """Set while no client is connected."""
        self._empty.set()

    def _item(self, payload: Any, encode: Callable[[Any], str] = dumps, device: str = "") -> Item:
        self._counter += 1
        return Item(self._counter, payload, encode, device)

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
            item = self._item(data, encode, device)
            for c in self.clients:
                c.push_sample(item)

    def event(self, data: dict[str, Any], device: str = "") -> None:
        if self.clients:
            item = self._item(data, dumps, device)
            for c in self.clients:
                c.push_event(item)

    def slot(self, kind: str, data: dict[str, Any], device: str = "") -> None:
        """A message where only the newest matters (stats, progress), of each device."""
        if self.clients:
            item = self._item(data, dumps, device)
            for c in self.clients:
                c.put_slot(kind, item)

    def close_all(self) -> None:
        for c in self.clients:
            c.close()
