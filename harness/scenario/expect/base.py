"""What every expectation kind shares: the registry of kinds, the context a kind's parser reads
from, the evaluator it runs, and the facts a run hands each evaluator when it ends.

A kind is one module of this package that, when imported, calls `register(Kind(...))` with its
key, the companion keys it takes, its check (a frozen dataclass with a `describe` method for its
label), its parser and its evaluator (docs/scenarios.md, "Adding an expectation kind").

Evaluators run as the run goes: each keeps a few numbers, not the samples, and resolves (pass
or fail) as soon as it can, so progress shows live and memory stays flat. Times are scenario
seconds. A sample covers [start, end] of scenario time (see
`harness.runner.observer.DeviceClock`); it counts for a window when the two overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from harness.link import Sample
from harness.scenario.model import Check, Expect, Step
from harness.scenario.reader import Path_, Reader
from harness.scenario.units import format_duration

PENDING, PASS, FAIL, SKIPPED = "pending", "pass", "fail", "skipped"
"""SKIPPED: the run was stopped before the expectation's window (or the faults it judges)
ended, so it could not be judged."""

Window = tuple[float, float]
"""[from, to] in scenario seconds; None in its place means the whole run."""


def window_text(w: Window | None) -> str:
    return "whole run" if w is None else f"{format_duration(w[0])}..{format_duration(w[1])}"


def overlaps(start: float, end: float, window: Window | None) -> bool:
    return window is None or (end >= window[0] and start <= window[1])


def past(start: float, window: Window | None) -> bool:
    """A sample starting here proves no later one can still fall in the window (per boot)."""
    return window is not None and start > window[1]


# --- evaluating ---------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    state: str = PENDING
    measured: float | str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the run knows when it ends, for the evaluators still pending."""

    totals: Mapping[str, int]
    """Link totals by name, as in the run record's `link`."""
    resets: int
    """Device resets the host saw."""
    recovery: Mapping[str, float | None]
    """Per fault step name: seconds from the end of its faults until the link caught up
    (None: it had not by the end of the run)."""
    stopped_at: float | None = None
    """Scenario seconds when Ctrl-C or SIGTERM stopped the run; None when it ran its course."""
    fault_ends: Mapping[str, float] = field(default_factory=dict)
    """Per fault step name: when its faults end (scenario seconds)."""


class Evaluator:
    def __init__(self, expect: Expect) -> None:
        self.expect = expect
        self.outcome = Outcome()

    @property
    def label(self) -> str:
        return self.expect.label

    @property
    def resolved(self) -> bool:
        return self.outcome.state != PENDING

    def as_dict(self) -> dict[str, Any]:
        """The expectation as the record and the live page show it."""
        o = self.outcome
        return {
            "number": self.expect.number,
            "label": self.label,
            "state": o.state,
            "measured": o.measured,
            "detail": o.detail,
        }

    def _resolve(self, ok: bool, measured: float | str | None, detail: str) -> None:
        if not self.resolved:
            self.outcome = Outcome(PASS if ok else FAIL, measured, detail)

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        """A sample was delivered, covering scenario time [start, end]."""

    def on_command(self, handle: int, name: str, step: int | None, latency: float | None) -> None:
        """A command finished: latency in seconds from when the step issued it, None if failed."""

    def finish(self, facts: RunFacts) -> None:
        """The run is over: resolve whatever is still pending."""

    def unreached(self, facts: RunFacts) -> str | None:
        """Why a stopped run cannot judge this expectation (None: it can): by default, its
        window ends after the run was stopped."""
        window = getattr(self.expect.check, "window", None)
        if facts.stopped_at is not None and window is not None and window[1] > facts.stopped_at:
            return (
                f"the run stopped at {facts.stopped_at:.1f} s, before the window's end "
                f"({format_duration(window[1])})"
            )
        return None

    def skip(self, why: str) -> None:
        if not self.resolved:
            self.outcome = Outcome(SKIPPED, None, why)


# --- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What a kind's parser reads besides its [[expect]] entry."""

    reader: Reader
    duration: float
    """The scenario's duration in seconds (windows must start before it)."""
    steps: tuple[Step, ...]
    """The scenario's steps, expanded and in time order."""


C = TypeVar("C", bound=Check)


@dataclass(frozen=True, slots=True)
class Kind(Generic[C]):
    key: str
    """The key that names the kind in an [[expect]] entry and carries its main value."""
    order: int
    """Where the kind comes when kinds are listed (in messages and among an entry's keys)."""
    takes: tuple[str, ...]
    """The other keys an entry of this kind may have, besides `name`."""
    check: type[C]
    parse: Callable[[Context, dict[str, Any], Path_], C]
    """Reads an entry (only its own keys are in it) at the given key path, into a check."""
    evaluator: Callable[[Expect, C], Evaluator]


_KINDS: dict[str, Kind[Any]] = {}


def register(kind: Kind[Any]) -> None:
    for known in _KINDS.values():
        if kind.key == known.key or kind.check is known.check:
            raise ValueError(f'expectation kind "{kind.key}" clashes with "{known.key}"')
    _KINDS[kind.key] = kind


def unregister(key: str) -> None:
    del _KINDS[key]


def kinds() -> tuple[Kind[Any], ...]:
    """The registered kinds, in their order."""
    return tuple(sorted(_KINDS.values(), key=lambda k: (k.order, k.key)))


def entry_keys() -> tuple[str, ...]:
    """Every key an [[expect]] entry may have: name, the kinds, then their companions."""
    listed = kinds()
    companions = (key for kind in listed for key in kind.takes)
    return tuple(dict.fromkeys(("name", *(kind.key for kind in listed), *companions)))


def evaluator(expect: Expect) -> Evaluator:
    """A fresh evaluator for the expectation, from the kind its check belongs to."""
    for kind in _KINDS.values():
        if type(expect.check) is kind.check:
            return kind.evaluator(expect, expect.check)
    raise TypeError(expect.check)
