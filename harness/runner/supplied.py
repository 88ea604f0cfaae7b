"""A target whose rail a bench supply feeds (`harness run --supply` / `--bench`).

`SuppliedTarget` wraps the target that talks to the device (a board) and adds the capability
"supply": its `start` identifies the supply, starts `follow` in the run's nursery with the
run's origin (so the rail is up before the device's port is opened and the board boots), and
only then starts the inner target. Every acknowledged setting, every readback and every line
for the person at the bench reaches the runner through the target-event callback
(`SupplyOpened`, `SupplySet`, `SupplyRead`, `SupplySaid`), as a board's port changes do.

`follow` runs until the run's nursery is cancelled at the run's end (after the drain, so a
device on the rail keeps its power while the link drains) or on an error; on Ctrl-C or SIGTERM
the run calls `stop()` at once, before the drain: a person who stops a bench wants its output
off now. Either way follow's shielded `finally` switches the output off (or to the bench's
safe_volts); the supply's session is closed after it, shielded too.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import trio

from harness.errors import UserError
from harness.scenario.model import Scenario
from harness.supplies import (
    FollowReport,
    Limits,
    Readback,
    Setting,
    Supply,
    SupplySpec,
    check_profile,
    follow,
    make_supply,
    profile_limits,
)
from harness.supplies.follow import POLL_RATE, RATE
from harness.supplies.manual import count_down, upcoming
from harness.targets import (
    OnTargetEvent,
    SupplyOpened,
    SupplyRead,
    SupplySaid,
    SupplySet,
    Target,
    Truth,
)

SCENARIO = "scenario"
"""`limits_from` for the profile's own maxima (no bench limits)."""


@dataclass(frozen=True, slots=True)
class SupplyChoice:
    """What the command line named: the supply and the limits it must keep."""

    spec: SupplySpec
    limits: Limits
    limits_from: str
    """The bench file's path, or SCENARIO."""


def choose_limits(
    scenario: Scenario, spec: SupplySpec, bench_limits: Limits | None, bench: str | None
) -> SupplyChoice:
    """The limits in force (the bench file's, else the profile's own maxima), with the profile
    checked against them: a point beyond one is refused here, before anything is opened or
    switched on (one line naming the scenario's point and the limit, exit 2)."""
    if bench_limits is not None and bench is not None:
        limits, source = bench_limits, bench
    else:
        limits, source = profile_limits(scenario.supply), SCENARIO
    if (refused := check_profile(scenario.supply, limits, where=scenario.file)) is not None:
        raise refused
    return SupplyChoice(spec, limits, source)


def limits_dict(limits: Limits) -> dict[str, float | None]:
    return {
        "max_volts": limits.max_volts,
        "max_amps": limits.max_amps,
        "max_slew": limits.max_slew,
        "safe_volts": limits.safe_volts,
    }


class SuppliedTarget:
    """`inner` with its rail fed by the supply `choice` names, following `scenario`'s profile.
    `backend` is PyVISA's (a pyvisa-sim file in tests)."""

    def __init__(
        self,
        inner: Target,
        scenario: Scenario,
        choice: SupplyChoice,
        *,
        rate: float = RATE,
        poll_rate: float = POLL_RATE,
        backend: str = "@py",
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities | {"supply", "brownout"}
        """A supply on the rail can take it below a shared-rail MCU's brown-out level."""
        self.scenario = scenario
        self.choice = choice
        self.rate = rate
        self.poll_rate = poll_rate
        self.backend = backend
        self.report = FollowReport()
        self._scopes: list[trio.CancelScope] = []
        """The supply's tasks (following, a manual countdown), cancelled by `stop`."""

    @property
    def truth(self) -> Truth | None:
        return self.inner.truth

    @property
    def by_hand(self) -> bool:
        return self.choice.spec.driver == "manual"

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        def say(text: str) -> None:
            on_event(SupplySaid(trio.current_time(), text))

        supply = make_supply(self.choice.spec, say=say, backend=self.backend)
        try:
            identity = await supply.identify()
        except BaseException:
            with trio.CancelScope(shield=True):
                await supply.aclose()
            raise
        limits = self.choice.limits
        on_event(
            SupplyOpened(
                trio.current_time(),
                supply.name,
                identity,
                supply.describe(),
                limits_dict(limits),
                self.choice.limits_from,
                limits.describe(),
                self.by_hand,
            )
        )
        if self.by_hand:
            late = max(0.0, trio.current_time() - origin)
            announcements = upcoming(self.scenario.supply, origin, start=late)
            nursery.start_soon(self._stoppable, partial(count_down, announcements, say))
        await nursery.start(partial(self._follow, supply, origin, on_event))
        return await self.inner.start(nursery, origin, on_event)

    async def _follow(
        self,
        supply: Supply,
        origin: float,
        on_event: OnTargetEvent,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        report = self.report

        def on_setting(s: Setting) -> None:
            on_event(SupplySet(s.at, s.what, s.value, s.due, s.sent, s.point, report.skipped))

        def on_readback(at: float, r: Readback) -> None:
            on_event(SupplyRead(at, r.volts, r.amps))

        try:
            with self._scope():
                await follow(
                    supply,
                    self.scenario.supply,
                    origin=origin,
                    limits=self.choice.limits,
                    until=math.inf,
                    rate=self.rate,
                    poll_rate=self.poll_rate,
                    on_setting=on_setting,
                    on_readback=on_readback,
                    report=report,
                    task_status=task_status,
                )
        finally:
            with trio.CancelScope(shield=True):
                await supply.aclose()

    def _scope(self) -> trio.CancelScope:
        scope = trio.CancelScope()
        self._scopes.append(scope)
        return scope

    async def _stoppable(self, task: Callable[[], Awaitable[None]]) -> None:
        with self._scope():
            await task()

    def stop(self) -> bool:
        """The run was stopped (Ctrl-C, SIGTERM): end the output now, not after the drain.
        True when that leaves a device on the rail without power (its MCU on the rail, and the
        output switched off or set below its brown-out level)."""
        for scope in self._scopes:
            scope.cancel()
        inner = self.inner.stop()
        device = self.scenario.device
        safe = self.choice.limits.safe_volts
        return inner or (device.shared_rail and (safe is None or safe < device.brownout))

    async def reset(self) -> None:
        await self.inner.reset()

    def set_line_rate(self, rate: float | None) -> None:
        self.inner.set_line_rate(rate)

    def describe(self) -> str:
        return f"{self.inner.describe()}, its rail from {self.choice.spec.name}"

    async def why_it_ended(self) -> str | None:
        return await self.inner.why_it_ended()


def refuse_rail_driver(target: str, flag: str) -> UserError:
    """A target that drives the rail itself takes no bench supply."""
    return UserError(
        f"{flag}: the {target} target drives the rail itself from the profile; a bench supply "
        "feeds a real board (--target board)"
    )
