"""The run's fan-out: everything observed is published here once, and each consumer (store,
viewer, console) subscribes. Publishing never blocks: a consumer that cannot keep up decides
itself what to do (the store buffers everything, the viewer coalesces)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from harness.link import Sample
from harness.scenario.model import DEFAULT_DEVICE


class SampleEvent(NamedTuple):
    """A delivered sample with where it sits in scenario time and when it arrived. (A named
    tuple: one is made per frame, see `Sample`.)"""

    sample: Sample
    start: float
    end: float
    arrived: float
    """Scenario seconds when the host delivered it."""
    device: str = DEFAULT_DEVICE
    """The scenario's device that sent it."""


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Anything else worth recording: `kind` is one of KINDS, `data` its details."""

    kind: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)
    device: str = DEFAULT_DEVICE
    """The device it concerns (a run's own events, e.g. the store's: the first device's)."""


KINDS = (
    "run",  # started / ended
    "hello",
    "reset",
    "power",  # mock truth: power lost or boot
    "sensor",  # the rail above the sensor's absolute maximum (over_max) or back (within_max)
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
    "silent",  # no sample while one was due (harness.runner.watch)
    "reporting",  # samples again after a silence
    "other_device",  # the port leads to another device than the run began with
    "device",  # one device of several stopped before the run (its link ended): state, why
    "supply",  # the bench supply: opened (identity, limits), or a setting it acknowledged
    "readback",  # the bench supply's own measurement of its output (volts, amps)
    "announcement",  # a line for the person at the bench (a manual supply's settings, countdown)
)

Published = SampleEvent | RunEvent


class Bus:
    def __init__(self) -> None:
        self._subscribers: tuple[Callable[[Published], None], ...] = ()
        """A tuple, replaced on (un)subscribe: a subscriber may unsubscribe while called."""

    def subscribe(self, fn: Callable[[Published], None]) -> Callable[[], None]:
        """Call fn with everything published from now on; returns the unsubscribe function."""
        self._subscribers += (fn,)

        def unsubscribe() -> None:
            subs = list(self._subscribers)
            subs.remove(fn)
            self._subscribers = tuple(subs)

        return unsubscribe

    def publish(self, item: Published) -> None:
        for fn in self._subscribers:
            fn(item)
