"""The run's fan-out: everything observed is published here once, and each consumer (store,
viewer, console) subscribes. Publishing never blocks: a consumer that cannot keep up decides
itself what to do (the store buffers everything, the viewer coalesces)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.link import Sample


@dataclass(frozen=True, slots=True)
class SampleEvent:
    """A delivered sample with where it sits in scenario time and when it arrived."""

    sample: Sample
    start: float
    end: float
    arrived: float
    """Scenario seconds when the host delivered it."""


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Anything else worth recording: `kind` is one of KINDS, `data` its details."""

    kind: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)


KINDS = (
    "run",  # started / ended
    "hello",
    "reset",
    "power",  # mock truth: power lost or boot
    "alert",
    "command",
    "step",
    "fault",  # injected by the relay
    "corrupt",
    "gap",
    "retransmission",
    "duplicate",
    "log",
    "expectation",
    "store",  # a problem with the database, or its end
)

Published = SampleEvent | RunEvent


class Bus:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[Published], None]] = []

    def subscribe(self, fn: Callable[[Published], None]) -> Callable[[], None]:
        """Call fn with everything published from now on; returns the unsubscribe function."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def publish(self, item: Published) -> None:
        for fn in list(self._subscribers):
            fn(item)
