"""`alert = "uv"`: a sample with that status overlaps the window (`within`, default the whole
run) — or, with `absent = true`, none does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.link import Sample, fields
from harness.scenario.anchors import Span
from harness.scenario.expect.base import (
    Context,
    Evaluator,
    Kind,
    RunFacts,
    Window,
    overlaps,
    past,
    register,
    window_text,
)
from harness.scenario.model import Expect
from harness.scenario.reader import Path_


@dataclass(frozen=True, slots=True)
class AlertExpect:
    status: str
    window: Window | Span | None
    absent: bool = False

    def describe(self) -> str:
        if self.absent:
            return f"no {self.status} alert ({window_text(self.window)})"
        return f"{self.status} alert within {window_text(self.window)}"


def parse(cx: Context, t: dict[str, Any], path: Path_) -> AlertExpect:
    r = cx.reader
    statuses = [s for s in fields.STATUSES if s != fields.STATUS_OK]
    status = r.string(t["alert"], (*path, "alert"), statuses)
    window = cx.window(t, path, "within")
    absent = r.boolean(t.get("absent", False), (*path, "absent"))
    return AlertExpect(status, window, absent)


class AlertEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: AlertExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.first: float | None = None

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        c = self.check
        if s.status == c.status and overlaps(start, end, c.window) and self.first is None:
            self.first = max(start, c.window[0]) if c.window else start
            if c.absent:
                self._resolve(False, self.first, f"{c.status} alert at {self.first:.2f} s")
            else:
                self._resolve(True, self.first, f"first at {self.first:.2f} s")
        elif past(start, c.window):
            self._settle()

    def _settle(self) -> None:
        c = self.check
        if self.first is None:
            ok = c.absent
            self._resolve(ok, None, "none" if ok else f"no {c.status} alert in the window")

    def finish(self, facts: RunFacts) -> None:
        self._settle()


register(
    Kind(
        key="alert",
        order=10,
        takes=("within", "from", "to", "absent"),
        check=AlertExpect,
        parse=parse,
        evaluator=AlertEvaluator,
    )
)
