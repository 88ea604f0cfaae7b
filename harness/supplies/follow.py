"""Driving a supply along a scenario's profile, in trio time.

`follow` sets the current limit and the first volts, switches the output on, then makes each
planned setting (harness.supplies.schedule: one at every point, steps along each ramp at
`rate` a second) at its time after `origin`, while a poller reads the output back at
`poll_rate` a second. Each acknowledged setting is reported with the trio time it took effect
and how long the supply took; each readback with the time it was taken.

At the end, and also on cancellation (Ctrl-C ends a run by cancelling its nursery) and on any
error, the output is switched off, or set to the bench's `safe_volts` and left on: in a
`finally`, shielded from the cancellation, bounded by `end_timeout` (a driver's exchange
in progress still finishes first, within its own I/O timeout). If that fails the error says
so, and that the output must be switched off by hand. That holds while the process lives; a
SIGKILL (or a power cut of the host) ends it with no `finally`: the supply keeps the output as
last set, on, at whatever volts the profile had reached.

A setting is made when due unless the supply is behind: a setting whose successor is already
due is skipped (counted in the report), so a slow supply follows the profile's present value
rather than a growing backlog.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import trio

from harness.errors import UserError
from harness.scenario.profile import Profile
from harness.supplies.base import Readback, Supply, SupplyError
from harness.supplies.limits import Limits, check_profile, profile_limits
from harness.supplies.schedule import Planned, plan

RATE = 20.0
"""Settings a second along a ramp (no more than the supply's own max_rate)."""
POLL_RATE = 5.0
"""Readbacks a second."""
END_TIMEOUT = 5.0
"""Seconds the end state may take before the output is reported as left on."""

ON_TIME = 0.01
"""Started this close after its origin, a follow begins at the profile's 0 s; later, at the
profile's value at the time it starts."""

What = Literal["volts", "current_limit", "output"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One acknowledged setting. Times are trio times: `due` when the plan wanted it, `sent`
    when the request went out, `at` when the supply acknowledged it (when it took effect)."""

    what: What
    value: float | bool
    due: float
    sent: float
    at: float
    point: int | None = None
    """The profile point it reaches (numbered from 1, as in the file), None for a ramp step
    or a setting of the start or the end."""

    @property
    def latency(self) -> float:
        return self.at - self.sent


@dataclass(slots=True)
class FollowReport:
    settings: int = 0
    skipped: int = 0
    readbacks: int = 0
    max_latency: float = 0.0


def _ignore_setting(setting: Setting) -> None:
    """The default `on_setting`: a caller that keeps no log of settings."""


def _ignore_readback(at: float, readback: Readback) -> None:
    """The default `on_readback`: a caller that keeps no readback."""


def _lone_user_error(exc: BaseException | None) -> UserError | None:
    """The UserError that `exc` is, or that is all its (nested) exception group holds."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, UserError) else None


async def follow(
    supply: Supply,
    profile: Profile,
    *,
    origin: float,
    limits: Limits | None = None,
    until: float | None = None,
    rate: float = RATE,
    poll_rate: float = POLL_RATE,
    on_setting: Callable[[Setting], None] = _ignore_setting,
    on_readback: Callable[[float, Readback], None] = _ignore_readback,
    end_timeout: float = END_TIMEOUT,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> FollowReport:
    """Follow `profile` with its 0 s at trio time `origin` until `until` s after it (default:
    the profile's last point; `math.inf`: until cancelled), then end the output. Refuses
    (UserError, before anything is set) a profile beyond `limits` (default: the profile's own
    maxima). Started with `nursery.start`, it returns to the starter once the output is on."""
    limits = limits or profile_limits(profile)
    if (refused := check_profile(profile, limits)) is not None:
        raise refused
    until = profile.end if until is None else until
    report = FollowReport()

    async def apply(
        what: What,
        value: float | bool,
        due: float,
        point: int | None,
        call: Callable[[], Awaitable[None]],
    ) -> None:
        sent = trio.current_time()
        await call()
        setting = Setting(what, value, due, sent, trio.current_time(), point)
        report.settings += 1
        report.max_latency = max(report.max_latency, setting.latency)
        on_setting(setting)

    async def set_volts(p: Planned) -> None:
        await apply("volts", p.volts, origin + p.due, p.point, lambda: supply.set_volts(p.volts))

    async def poll() -> None:
        period = 1 / poll_rate
        next_at = trio.current_time()
        while True:
            t0 = trio.current_time()
            readback = await supply.measure()
            if readback is None:
                return  # this supply has no readback
            t1 = trio.current_time()
            report.readbacks += 1
            on_readback((t0 + t1) / 2, readback)
            next_at = max(next_at + period, t1)
            await trio.sleep_until(next_at)

    async def steps(planned: list[Planned]) -> None:
        i = 0
        while i < len(planned):
            now = trio.current_time() - origin
            while i + 1 < len(planned) and planned[i + 1].due <= now:
                i += 1
                report.skipped += 1
            await trio.sleep_until(origin + planned[i].due)
            await set_volts(planned[i])
            i += 1

    async def finish() -> str | None:
        """The end state; what went wrong, or None."""
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + end_timeout
            now = trio.current_time()
            try:
                if limits.safe_volts is not None:
                    safe = limits.safe_volts
                    await apply("volts", safe, now, None, lambda: supply.set_volts(safe))
                else:
                    await apply("output", False, now, None, lambda: supply.output(False))
            except SupplyError as exc:
                return str(exc)
            return None
        return f"no answer within {end_timeout:g} s"

    failure: BaseException | None = None
    try:
        late = trio.current_time() - origin
        start = late if late > ON_TIME else 0.0
        first, *rest = plan(profile, min(rate, supply.max_rate), start)
        rest = [p for p in rest if p.due <= until]
        now = trio.current_time()
        amps = limits.max_amps
        await apply("current_limit", amps, now, None, lambda: supply.set_current_limit(amps))
        await set_volts(first)
        await apply("output", True, trio.current_time(), None, lambda: supply.output(True))
        task_status.started()
        async with trio.open_nursery() as nursery:
            if poll_rate > 0:
                nursery.start_soon(poll)
            await steps(rest)
            if math.isfinite(until):
                await trio.sleep_until(origin + until)
            else:
                await trio.sleep_forever()
            nursery.cancel_scope.cancel()
        return report
    except BaseException as exc:
        failure = exc
        if (alone := _lone_user_error(exc)) is not exc and alone is not None:
            raise alone from None  # a one-line error is worth more to the user than its group
        raise
    finally:
        problem = await finish()
        if problem is not None:
            end = (
                f"set to safe_volts {limits.safe_volts:g} V"
                if limits.safe_volts is not None
                else "switched off"
            )
            text = (
                f"{supply.name}: the output could not be {end} at the end ({problem}); it is "
                "as last set: switch it off by hand"
            )
            if (alone := _lone_user_error(failure)) is not None:
                text = f"{alone}; then {text}"
            raise SupplyError(text) from failure
