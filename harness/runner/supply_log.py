"""What a run keeps of the bench supply it drove, for the record: who it was, its limits, the
settings it acknowledged and its readbacks, bounded for long runs.

Times here are scenario seconds. Settings that reach a profile point, and those that are not
ramp steps (the current limit, the output on and off, the end), are all kept; ramp steps and
readbacks are each kept up to `KEEP`, then thinned evenly (every 2nd, then every 4th...), so a
long run's record stays small and still spans the whole run. Totals count everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from harness.runner.record import ReadbackInfo, SupplyInfo, SupplySettingInfo

T = TypeVar("T")
KEEP = 2000
"""Ramp steps, readbacks and latencies kept in the record at most (each)."""


@dataclass(slots=True)
class Thinned(Generic[T]):
    """At most `limit` items of a stream, evenly spaced: when full, every other one is dropped
    and from then on only every `every`-th item is taken."""

    limit: int = KEEP
    items: list[T] = field(default_factory=list)
    every: int = 1
    seen: int = 0

    def add(self, item: T) -> None:
        self.seen += 1
        if (self.seen - 1) % self.every:
            return
        self.items.append(item)
        if len(self.items) >= self.limit:
            self.items = self.items[::2]
            self.every *= 2


@dataclass(slots=True)
class SupplyLog:
    name: str = ""
    identity: str = ""
    description: str = ""
    limits: dict[str, float | None] = field(default_factory=dict)
    limits_from: str = ""
    by_hand: bool = False
    opened: bool = False
    kept: list[tuple[int, SupplySettingInfo]] = field(default_factory=list)
    """Settings always kept, with their order among all settings."""
    steps: Thinned[tuple[int, SupplySettingInfo]] = field(default_factory=Thinned)
    latencies: Thinned[float] = field(default_factory=lambda: Thinned(10 * KEEP))
    latency_max: float | None = None
    settings_total: int = 0
    skipped: int = 0
    readbacks: Thinned[ReadbackInfo] = field(default_factory=Thinned)
    last_readback: ReadbackInfo | None = None
    """The newest readback (the console's status line shows it)."""
    last: tuple[int, SupplySettingInfo] | None = None
    """The latest setting (the end's, once the run is over): kept whatever the thinning."""

    def opened_as(
        self,
        name: str,
        identity: str,
        description: str,
        limits: dict[str, float | None],
        limits_from: str,
        by_hand: bool,
    ) -> None:
        self.name, self.identity, self.description = name, identity, description
        self.limits, self.limits_from, self.by_hand = dict(limits), limits_from, by_hand
        self.opened = True

    def setting(self, s: SupplySettingInfo, skipped: int) -> None:
        order = self.settings_total
        self.settings_total += 1
        self.skipped = max(self.skipped, skipped)
        self.latencies.add(s.latency)
        self.latency_max = (
            s.latency if self.latency_max is None else max(self.latency_max, s.latency)
        )
        self.last = (order, s)
        if s.what == "volts" and s.point is None and order > 1:  # 0, 1: the limit, the start
            self.steps.add((order, s))
        else:
            self.kept.append((order, s))

    def readback(self, r: ReadbackInfo) -> None:
        self.readbacks.add(r)
        self.last_readback = r

    def record(self) -> SupplyInfo:
        chosen = dict([*self.kept, *self.steps.items, *([self.last] if self.last else [])])
        settings = [chosen[order] for order in sorted(chosen)]
        latencies = self.latencies.items
        return SupplyInfo(
            name=self.name,
            identity=self.identity,
            description=self.description,
            limits=self.limits,
            limits_from=self.limits_from,
            by_hand=self.by_hand,
            settings=settings,
            settings_total=self.settings_total,
            settings_skipped=self.skipped,
            latency_max=None if self.latency_max is None else round(self.latency_max, 4),
            latency_median=round(_median(latencies), 4) if latencies else None,
            readbacks=list(self.readbacks.items),
            readbacks_total=self.readbacks.seen,
            readback_every=self.readbacks.every,
        )


def _median(values: list[float]) -> float:
    """statistics.median's value, without loading `statistics` (and `fractions`) into every run
    for the record's one median."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
