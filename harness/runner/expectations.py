"""Expectations, evaluated as the run goes: each keeps a few numbers, not the samples, and
resolves (pass or fail) as soon as it can, so progress shows live and memory stays flat.

Times are scenario seconds. A sample covers [start, end] of scenario time (see
`harness.runner.observer.DeviceClock`); it counts for a window when the two overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.link import Sample
from harness.scenario.model import (
    AckExpect,
    AlertExpect,
    Expect,
    LinkExpect,
    RecoveryExpect,
    ResetsExpect,
    StatExpect,
)
from harness.scenario.units import format_duration

PENDING, PASS, FAIL = "pending", "pass", "fail"


@dataclass(slots=True)
class Outcome:
    state: str = PENDING
    measured: float | str | None = None
    detail: str = ""


def _overlaps(start: float, end: float, window: tuple[float, float] | None) -> bool:
    return window is None or (end >= window[0] and start <= window[1])


def _past(start: float, window: tuple[float, float] | None) -> bool:
    """A sample starting here proves no later one can still fall in the window (per boot)."""
    return window is not None and start > window[1]


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

    def finish(
        self, totals: dict[str, int], resets: int, recovery: dict[str, float | None]
    ) -> None:
        """The run is over: resolve whatever is still pending."""


class AlertEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: AlertExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.first: float | None = None

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        c = self.check
        if s.status == c.status and _overlaps(start, end, c.window) and self.first is None:
            self.first = max(start, c.window[0]) if c.window else start
            if c.absent:
                self._resolve(False, self.first, f"{c.status} alert at {self.first:.2f} s")
            else:
                self._resolve(True, self.first, f"first at {self.first:.2f} s")
        elif _past(start, c.window):
            self._settle()

    def _settle(self) -> None:
        c = self.check
        if self.first is None:
            ok = c.absent
            self._resolve(ok, None, "none" if ok else f"no {c.status} alert in the window")

    def finish(
        self, totals: dict[str, int], resets: int, recovery: dict[str, float | None]
    ) -> None:
        self._settle()


class StatEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: StatExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.value: float | None = None
        self.weight = 0

    def _pick(self, s: Sample) -> float:
        c = self.check
        if c.measure == "v":
            return s.vmin if c.stat == "min" else s.vmax if c.stat == "max" else s.v
        if c.measure == "a":
            return s.amax if c.stat == "max" else s.a
        return s.w

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        c = self.check
        if _past(start, c.window):
            self._settle()
            return
        if s.n == 0 or not _overlaps(start, end, c.window):
            return
        x = self._pick(s)
        if self.value is None:
            self.value, self.weight = x, s.n
        elif c.stat == "min":
            self.value = min(self.value, x)
        elif c.stat == "max":
            self.value = max(self.value, x)
        else:
            self.weight += s.n
            self.value += (x - self.value) * s.n / self.weight

    def _settle(self) -> None:
        c = self.check
        unit = {"v": "V", "a": "A", "w": "W"}[c.measure]
        if self.value is None:
            self._resolve(False, None, "no samples in the window")
            return
        ok = (c.below is None or self.value < c.below) and (c.above is None or self.value > c.above)
        self._resolve(ok, round(self.value, 4), f"{self.value:.4g} {unit}")

    def finish(
        self, totals: dict[str, int], resets: int, recovery: dict[str, float | None]
    ) -> None:
        self._settle()


class AckEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: AckExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.worst = 0.0
        self.count = 0
        self.failed = 0

    def on_command(self, handle: int, name: str, step: int | None, latency: float | None) -> None:
        c = self.check
        if (c.command and name != c.command) or (c.step is not None and step != c.step):
            return
        self.count += 1
        if latency is None:
            self.failed += 1
            self._resolve(False, None, f"{name} failed")
            return
        self.worst = max(self.worst, latency)
        if latency > c.within:
            self._resolve(False, round(latency, 4), f"{name} took {format_duration(latency)}")

    def finish(
        self, totals: dict[str, int], resets: int, recovery: dict[str, float | None]
    ) -> None:
        if self.count == 0:
            self._resolve(False, None, "no such command finished")
        self._resolve(
            True, round(self.worst, 4), f"slowest {self.worst * 1000:.0f} ms of {self.count}"
        )


class LinkEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: LinkExpect) -> None:
        super().__init__(expect)
        self.check = check

    def finish(
        self, totals: dict[str, int], resets: int, recovery: dict[str, float | None]
    ) -> None:
        over = {k: totals[k] for k, limit in self.check.limits.items() if totals[k] > limit}
        shown = ", ".join(f"{k} {totals[k]}" for k in self.check.limits)
        self._resolve(not over, shown, shown)


class ResetsEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: ResetsExpect) -> None:
        super().__init__(expect)
        self.check = check

    def finish(
        self, totals: dict[str, int], resets: int, recovery: dict[str, float | None]
    ) -> None:
        self._resolve(resets == self.check.count, resets, f"{resets} seen")


class RecoveryEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: RecoveryExpect) -> None:
        super().__init__(expect)
        self.check = check

    def finish(
        self, totals: dict[str, int], resets: int, recovery: dict[str, float | None]
    ) -> None:
        took = recovery.get(self.check.after)
        if took is None:
            self._resolve(False, None, "did not recover before the run ended")
        else:
            ok = took <= self.check.within
            self._resolve(ok, round(took, 3), f"{took:.2f} s")


def evaluator(expect: Expect) -> Evaluator:
    match expect.check:
        case AlertExpect() as c:
            return AlertEvaluator(expect, c)
        case StatExpect() as c:
            return StatEvaluator(expect, c)
        case AckExpect() as c:
            return AckEvaluator(expect, c)
        case LinkExpect() as c:
            return LinkEvaluator(expect, c)
        case ResetsExpect() as c:
            return ResetsEvaluator(expect, c)
        case RecoveryExpect() as c:
            return RecoveryEvaluator(expect, c)
    raise TypeError(expect.check)
