"""What every expectation kind shares: the registry of kinds, the context a kind's parser reads
from, the evaluator it runs, and the facts a run hands each evaluator when it ends.

A kind is one module of this package that, when imported, calls `register(Kind(...))` with its
key, the companion keys it takes, its check (a frozen dataclass with a `describe` method for its
label), its parser and its evaluator (docs/scenarios.md, "Adding an expectation kind"). A check
with limits holds them as `limits` (harness.scenario.expect.limits): the record then shows
them, with their units, beside what was measured.

Evaluators run as the run goes: each keeps a few numbers, not the samples, and resolves (pass
or fail) as soon as it can, so progress shows live and memory stays flat. Times are scenario
seconds. A sample covers [start, end] of scenario time (see
`harness.runner.observer.DeviceClock`); it counts for a window when the two overlap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from harness.link import Sample, fields, seqnum
from harness.scenario import anchors
from harness.scenario.anchors import Anchor, Fixed, Span
from harness.scenario.expect.limits import Limits
from harness.scenario.expect.states import FAIL as FAIL
from harness.scenario.expect.states import MARGINAL as MARGINAL
from harness.scenario.expect.states import PASS as PASS
from harness.scenario.expect.states import PENDING as PENDING
from harness.scenario.expect.states import SKIPPED as SKIPPED
from harness.scenario.expect.states import STATES as STATES
from harness.scenario.model import Check, Expect, Step
from harness.scenario.reader import Path_, Reader, show, suggest
from harness.scenario.units import format_duration

Window = tuple[float, float]
"""[from, to] in scenario seconds; None in its place means the whole run. A check whose window
is anchored to something the run has to see holds a `Span` until then (`Anchored`)."""


UNCOVERED_SHOWN = 0.05
"""Seconds of a window no sample covered from which a measure says so. A sample's place in
scenario time is known to within the link's delay (its frame's line time), so a window's edges
can seem uncovered by a few milliseconds; a lost sample or a reset leaves a report interval or
more."""


def _margin(limits: Limits | None, measured: float | str | None) -> float | None:
    if limits is None or isinstance(measured, str | bool) or measured is None:
        return None
    margin = limits.margin(float(measured))
    return None if margin is None or not math.isfinite(margin) else round(margin, 9)


def window_text(w: Window | Span | None) -> str:
    if isinstance(w, Span):
        return w.text()
    if isinstance(w, Fixed):
        return w.text
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


class NewSamples:
    """Per boot, the last seq counted: a sample delivered twice (a duplicate the link let
    through, a copy after a host restart) is counted once, and an older seq not at all."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def first(self, s: Sample) -> bool:
        """Whether `s` is new; it is then the boot's last."""
        last = self._last.get(s.boot)
        if last is not None and seqnum.diff(s.seq, last) <= 0:
            return False
        self._last[s.boot] = s.seq
        return True


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
        """The expectation as the record and the live page show it: `limit` is its limits with
        their units, `unit` the base unit `measured` is in (both "" for a kind without),
        `margin` how far `measured` is inside its nearest bound in that unit (negative:
        outside; None without limits, a value judged equal, or nothing measured)."""
        o = self.outcome
        limits = getattr(self.expect.check, "limits", None)
        if not isinstance(limits, Limits):
            limits = None
        return {
            "number": self.expect.number,
            "label": self.label,
            "state": o.state,
            "measured": o.measured,
            "detail": o.detail,
            "limit": "" if limits is None else limits.describe(),
            "unit": "" if limits is None else limits.dim.base,
            "margin": _margin(limits, o.measured),
        }

    def _resolve(self, ok: bool, measured: float | str | None, detail: str) -> None:
        self._settle_as(PASS if ok else FAIL, measured, detail)

    def _settle_as(self, state: str, measured: float | str | None, detail: str) -> None:
        """Resolve to `state` (pass, marginal or fail), unless already resolved."""
        if not self.resolved:
            self.outcome = Outcome(state, measured, detail)

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        """A sample was delivered, covering scenario time [start, end]."""

    def on_command(self, handle: int, name: str, step: int | None, latency: float | None) -> None:
        """A command finished: latency in seconds from when the step issued it, None if failed."""

    def on_readback(self, at: float, volts: float, amps: float) -> None:
        """The bench supply measured its output at scenario second `at` (runs with --supply
        or --bench)."""

    def on_event(self, kind: str, at: float, data: Mapping[str, Any]) -> None:
        """A run event an anchor or a kind may wait for (kind one of `anchors.EVENT_KINDS`: a
        step ran, an alert began, the host saw a new boot, a hello, a device log line), at scenario
        seconds `at`, with the data the run's bus gives it."""

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


HELD_PRUNE = 256
"""Items an Anchored evaluator holds between two prunings of what can no longer count."""


def _ends(item: tuple[Any, ...]) -> float:
    """When a held item ends: a sample its end, an event its time; a command never counts as
    over (it is kept until the window opens)."""
    if item[0] == "sample":
        return float(item[3])
    if item[0] == "event":
        return float(item[2])
    return math.inf


class Anchored(Evaluator):
    """An expectation whose window waits for the run to see its anchors: the samples and events
    before that are held, then handed in order to the kind's own evaluator, made with the window
    the anchors gave (clipped to the scenario). An anchor that never happened fails it, saying
    so."""

    def __init__(self, expect: Expect, make: Callable[[Expect, Any], Evaluator], duration: float):
        super().__init__(expect)
        check = expect.check
        span = check.window  # type: ignore[attr-defined]
        assert isinstance(span, Span)
        self.span = span
        self.make = make
        self.duration = duration
        self.times: list[float | None] = list(span.fixed)
        self.counts = [0, 0]
        self.held: list[tuple[Any, ...]] = []
        """("sample", s, start, end), ("command", ...) or ("event", kind, at, data), in order;
        what ends before the window's earliest start is let go (every HELD_PRUNE items)."""
        self.kept = HELD_PRUNE
        self.latest_start = -math.inf
        """The start of the latest sample delivered (scenario seconds)."""
        self.inner: Evaluator | None = None

    def _forward(self, item: tuple[Any, ...]) -> None:
        assert self.inner is not None
        match item:
            case ("sample", s, start, end):
                self.inner.on_sample(s, start, end)
            case ("command", handle, name, step, latency):
                self.inner.on_command(handle, name, step, latency)
            case ("event", kind, at, data):
                self.inner.on_event(kind, at, data)
        self.outcome = self.inner.outcome

    def _take(self, item: tuple[Any, ...]) -> None:
        if self.resolved and self.inner is None:
            return
        if self.inner is not None:
            self._forward(item)
            return
        if item[0] == "sample":
            self.latest_start = max(self.latest_start, item[2])
        lo = self._earliest_start()
        if lo is not None and _ends(item) < lo:
            return
        self.held.append(item)
        if len(self.held) >= 2 * self.kept and lo is not None:
            self.held = [i for i in self.held if _ends(i) >= lo]
            self.kept = max(HELD_PRUNE, len(self.held))

    def _earliest_start(self) -> float | None:
        """The earliest the window can still start. Its start anchor, not seen yet, is an
        event the run sees from now on: an alert begins no earlier than the latest sample
        delivered, and a reset, a log line or a step held by a wait comes later than that
        sample arrived (a sample's place ends no later than its arrival)."""
        if self.times[0] is not None:
            return self.times[0]
        if self.latest_start == -math.inf:
            return None
        return self.latest_start + self.span.lo.offset

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        self._take(("sample", s, start, end))

    def on_command(self, handle: int, name: str, step: int | None, latency: float | None) -> None:
        self._take(("command", handle, name, step, latency))

    def on_event(self, kind: str, at: float, data: Mapping[str, Any]) -> None:
        if self.inner is None and not self.resolved:
            for i, anchor in enumerate((self.span.lo, self.span.hi)):
                if self.times[i] is None and anchor.matches(kind, dict(data), self.counts[i]):
                    self.times[i] = at + anchor.offset
                elif anchor.counts(kind):
                    self.counts[i] += 1
            if self.times[0] is not None and self.times[1] is not None:
                self._open(self.times[0], self.times[1])
        self._take(("event", kind, at, data))

    def _open(self, lo: float, hi: float) -> None:
        lo, hi = max(lo, 0.0), min(hi, self.duration)
        if hi < lo:
            self._resolve(
                False,
                None,
                f"the window {self.span.text()} ends ({hi:.2f} s) before it starts ({lo:.2f} s)",
            )
            self.held.clear()
            return
        check = dataclasses.replace(self.expect.check, window=(lo, hi))  # type: ignore[type-var]
        self.inner = self.make(dataclasses.replace(self.expect, check=check), check)
        held, self.held = self.held, []
        for item in held:
            self._forward(item)

    def _missing(self) -> str:
        names = [
            a.text
            for a, t in zip((self.span.lo, self.span.hi), self.times, strict=True)
            if t is None
        ]
        return " and ".join(f'"{n}"' for n in dict.fromkeys(names))

    def unreached(self, facts: RunFacts) -> str | None:
        if self.inner is not None:
            return self.inner.unreached(facts)
        if facts.stopped_at is not None and not self.resolved:
            return f"the run stopped at {facts.stopped_at:.1f} s, before {self._missing()} happened"
        return None

    def finish(self, facts: RunFacts) -> None:
        if self.inner is not None:
            self.inner.finish(facts)
            self.outcome = self.inner.outcome
        else:
            self._resolve(False, None, f"{self._missing()} never happened")


# --- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What a kind's parser reads besides its [[expect]] entry."""

    reader: Reader
    duration: float
    """The scenario's duration in seconds (windows must start before it)."""
    steps: tuple[Step, ...]
    """The scenario's steps, expanded and in time order."""

    def window(self, t: dict[str, Any], path: Path_, key: str) -> Window | Span | None:
        """The entry's window: under `key` as [from, to], or as `from` and `to` (default: 0s and
        the end); each end a time or an anchor (harness.scenario.anchors). None: it has none. A
        window the file fixes is checked now; an anchored one is a `Span`."""
        r = self.reader
        ends = [k for k in ("from", "to") if k in t]
        if key in t and ends:
            raise r.fail((*path, ends[0]), f'goes instead of "{key}", not with it')
        if key in t:
            value = t[key]
            if not isinstance(value, list) or len(value) != 2:
                raise r.fail(
                    (*path, key), f'expected ["from", "to"], e.g. ["5s", "7s"], got {show(value)}'
                )
            raw = [(value[0], (*path, key, 1)), (value[1], (*path, key, 2))]
            where: Path_ = (*path, key)
        elif ends:
            raw = [(t.get("from", 0.0), (*path, "from")), (t.get("to", "end"), (*path, "to"))]
            where = (*path, ends[0])
        else:
            return None
        lo, hi = (self._anchor(v, p) for v, p in raw)
        fixed = (self._fixed(lo), self._fixed(hi))
        if fixed[0] is not None and fixed[1] is not None:
            window = r.check_window(fixed[0], fixed[1], where, self.duration)
            if lo.kind == hi.kind == "time":
                return window
            return Fixed(*window, f"{lo.text}..{hi.text}")
        return Span(lo, hi, fixed)

    def _anchor(self, value: Any, path: Path_) -> Anchor:
        r = self.reader
        if not isinstance(value, str):
            return Anchor("time", None, r.duration(value, path), show(value))
        anchor = r.convert(value, path, anchors.parse)
        if anchor.kind == "step":
            self.step_named(anchor.arg, path)
        elif anchor.kind == "alert":
            statuses = [s for s in fields.STATUSES if s != fields.STATUS_OK]
            if anchor.arg not in statuses:
                raise r.fail(
                    path,
                    f'"{value}": no alert "{anchor.arg}"{suggest(anchor.arg, statuses)}; '
                    f"alerts: {', '.join(statuses)}",
                )
        elif anchor.kind in ("reset", "boot") and anchor.arg < 1:
            raise r.fail(path, f'"{value}": {anchor.kind}s are counted from 1')
        return anchor

    def step_named(self, name: str | int, path: Path_) -> Step:
        """The (first) step of that name or [[step]] number; a name no step has, or that
        several steps have, is refused."""
        r = self.reader
        key = "number" if isinstance(name, int) else "name"
        found = [s for s in self.steps if getattr(s, key) == name]
        if not found:
            names = sorted({s.name for s in self.steps}) or ["(the scenario has no steps)"]
            raise r.fail(
                path,
                f'no step named "{name}"{suggest(str(name), (s.name for s in self.steps))}; '
                f"steps: {', '.join(names)}",
            )
        if len({s.number for s in found}) > 1:
            raise r.fail(
                path, f'several steps are named "{name}": give the one you mean a name = "..."'
            )
        return found[0]

    def _fixed(self, anchor: Anchor) -> float | None:
        match anchor.kind:
            case "time":
                return anchor.offset
            case "end":
                return self.duration + anchor.offset
            case "step":
                step = self.step_named(anchor.arg, ())
                return None if step.after_wait else step.at + anchor.offset
        return None


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
_discovered = False


def discover() -> None:
    """Import every kind module of the package (those already imported stay as they are). The
    kinds are discovered the first time they are listed: a run that judges nothing (a monitor)
    never loads them, and a kind's check exists only once its module is imported, so
    `evaluator` finds the kind of any check registered."""
    global _discovered
    _discovered = True
    import importlib
    import pkgutil

    package = importlib.import_module(__name__.rpartition(".")[0])
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def register(kind: Kind[Any]) -> None:
    for known in _KINDS.values():
        if kind.key == known.key or kind.check is known.check:
            raise ValueError(f'expectation kind "{kind.key}" clashes with "{known.key}"')
    _KINDS[kind.key] = kind


def unregister(key: str) -> None:
    del _KINDS[key]


def kinds() -> tuple[Kind[Any], ...]:
    """The registered kinds, in their order."""
    if not _discovered:
        discover()
    return tuple(sorted(_KINDS.values(), key=lambda k: (k.order, k.key)))


def entry_keys() -> tuple[str, ...]:
    """Every key an [[expect]] entry may have: name, the kinds, then their companions."""
    listed = kinds()
    companions = (key for kind in listed for key in kind.takes)
    return tuple(dict.fromkeys(("name", *(kind.key for kind in listed), *companions)))


def evaluator(expect: Expect, duration: float = float("inf")) -> Evaluator:
    """A fresh evaluator for the expectation, from the kind its check belongs to (one whose
    window waits for anchors is `Anchored`, clipped to the scenario's `duration`)."""
    for kind in _KINDS.values():
        if type(expect.check) is kind.check:
            if isinstance(getattr(expect.check, "window", None), Span):
                return Anchored(expect, kind.evaluator, duration)
            return kind.evaluator(expect, expect.check)
    raise TypeError(expect.check)
