"""Following a profile, in trio's virtual time (the autojump clock): which settings are made,
when, and that the output always ends off (or at safe_volts): at the end, on cancellation and
on an error."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from harness.errors import UserError
from harness.scenario.profile import Profile, SupplyPoint
from harness.supplies.base import Readback, SupplyError
from harness.supplies.follow import Setting, follow
from harness.supplies.limits import Limits

BROWNOUT = Profile(
    [
        SupplyPoint(0.0, 5.0, 0.1),
        SupplyPoint(2.0, 5.0, 0.1),
        SupplyPoint(3.0, 3.0, 0.1),  # a ramp down over 1 s
        SupplyPoint(4.0, 3.0, 0.1),
        SupplyPoint(4.0, 5.0, 0.1),  # a step back up
        SupplyPoint(6.0, 5.0, 0.1),
    ]
)


class FakeSupply:
    """Records every call with the trio time it was acknowledged; each takes `latency`."""

    name = "fake"

    def __init__(self, *, latency: float = 0.0, max_rate: float = 100.0) -> None:
        self.latency = latency
        self.max_rate = max_rate
        self.calls: list[tuple[float, str, float | bool]] = []
        self.volts = 0.0
        self.on = False
        self.fail: set[tuple[str, float | bool]] = set()
        self.hang: tuple[str, float | bool] | None = None
        self.readback = True

    def describe(self) -> str:
        return "a fake supply"

    async def _do(self, what: str, value: float | bool) -> None:
        await trio.sleep(self.latency)
        if (what, value) == self.hang:
            await trio.sleep_forever()
        if (what, value) in self.fail:
            raise SupplyError(f"fake: refused {what} {value}")
        self.calls.append((trio.current_time(), what, value))

    async def identify(self) -> str:
        return "fake"

    async def set_volts(self, volts: float) -> None:
        await self._do("volts", volts)
        self.volts = volts

    async def set_current_limit(self, amps: float) -> None:
        await self._do("current_limit", amps)

    async def output(self, on: bool) -> None:
        await self._do("output", on)
        self.on = on

    async def measure(self) -> Readback | None:
        await trio.sleep(self.latency)
        return Readback(self.volts if self.on else 0.0, 0.1) if self.readback else None

    async def aclose(self) -> None:
        pass


def relative(supply: FakeSupply, origin: float) -> list[tuple[float, str, float | bool]]:
    return [
        (round(t - origin, 6), what, round(v, 6) if not isinstance(v, bool) else v)
        for t, what, v in supply.calls
    ]


async def test_a_brownout_is_set_point_by_point_and_stepped_along_its_ramp(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply()
    origin = trio.current_time() + 1.0
    settings: list[Setting] = []
    await trio.sleep_until(origin)
    report = await follow(supply, BROWNOUT, origin=origin, on_setting=settings.append, poll_rate=0)
    calls = relative(supply, origin)
    ramp = [(round(2 + k * 0.05, 6), "volts", round(5 - 2 * k * 0.05, 6)) for k in range(1, 20)]
    assert calls == [
        (0.0, "current_limit", 0.1),  # the profile's own maximum: no bench limits
        (0.0, "volts", 5.0),
        (0.0, "output", True),
        *ramp,
        (3.0, "volts", 3.0),
        (4.0, "volts", 5.0),
        (6.0, "output", False),
    ]
    assert report.settings == len(calls) and report.skipped == 0
    points = {s.point: s.value for s in settings if s.point is not None}
    assert points == {1: 5.0, 3: 3.0, 5: 5.0}


async def test_the_rate_sets_the_steps_along_a_ramp(autojump_clock: MockClock) -> None:
    for rate, steps in ((10.0, 9), (4.0, 3), (0.0, 0)):
        supply = FakeSupply()
        origin = trio.current_time()
        await follow(supply, BROWNOUT, origin=origin, rate=rate, poll_rate=0)
        along = [t for t, what, _ in relative(supply, origin) if what == "volts" and 2 < t < 3]
        assert len(along) == steps, rate
        if steps:
            assert along[0] == pytest.approx(2 + 1 / rate)


async def test_a_supply_that_takes_fewer_settings_a_second_is_stepped_slower(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply(max_rate=5.0)
    origin = trio.current_time()
    await follow(supply, BROWNOUT, origin=origin, poll_rate=0)
    along = [t for t, what, _ in relative(supply, origin) if what == "volts" and 2 < t < 3]
    assert along == [2.2, 2.4, 2.6, 2.8]


async def test_each_setting_says_when_it_took_effect_and_how_long_it_took(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply(latency=0.01)
    settings: list[Setting] = []
    origin = trio.current_time()
    await follow(supply, BROWNOUT, origin=origin, on_setting=settings.append, poll_rate=0)
    for s in settings:
        assert s.latency == pytest.approx(0.01)
        assert s.sent >= s.due - 1e-9
    reached = next(s for s in settings if s.point == 3)
    assert reached.due == pytest.approx(origin + 3.0)
    assert reached.at == pytest.approx(origin + 3.01)


async def test_a_slow_supply_skips_what_it_cannot_keep_up_with(autojump_clock: MockClock) -> None:
    supply = FakeSupply(latency=0.08)
    settings: list[Setting] = []
    origin = trio.current_time()
    report = await follow(supply, BROWNOUT, origin=origin, on_setting=settings.append, poll_rate=0)
    assert report.skipped > 0
    ramp = [s for s in settings if s.what == "volts" and origin + 2 < s.due < origin + 3]
    for s in ramp:
        assert s.value == pytest.approx(BROWNOUT.at(s.due - origin)[0])
    # Never a backlog: each setting goes out within one setting's time of being due.
    assert all(s.sent - s.due <= 0.08 + 1e-9 for s in ramp)
    assert supply.calls[-1][1:] == ("output", False)
    reached = next(s for s in settings if s.point == 3)
    assert reached.value == 3.0 and reached.sent - reached.due <= 0.08 + 1e-9


async def test_readbacks_are_polled_at_their_rate(autojump_clock: MockClock) -> None:
    supply = FakeSupply()
    seen: list[tuple[float, Readback]] = []
    origin = trio.current_time()
    await follow(
        supply,
        BROWNOUT,
        origin=origin,
        poll_rate=5.0,
        on_readback=lambda t, r: seen.append((t, r)),
    )
    times = [round(t - origin, 6) for t, _ in seen]
    assert times == [round(k * 0.2, 6) for k in range(len(times))]
    assert times[-1] >= 5.8
    by_time = dict(zip(times, (r for _, r in seen), strict=True))
    assert by_time[1.0] == Readback(5.0, 0.1)
    assert by_time[3.6] == Readback(3.0, 0.1)


async def test_a_supply_without_readback_is_not_polled(autojump_clock: MockClock) -> None:
    supply = FakeSupply()
    supply.readback = False
    seen: list[tuple[float, Readback]] = []
    report = await follow(
        supply, BROWNOUT, origin=trio.current_time(), on_readback=lambda t, r: seen.append((t, r))
    )
    assert seen == [] and report.readbacks == 0


async def test_started_in_a_nursery_it_returns_once_the_output_is_on(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: follow(
                supply, BROWNOUT, origin=trio.current_time(), poll_rate=0, task_status=task_status
            )
        )
        assert supply.on
        assert [what for _, what, _ in supply.calls] == ["current_limit", "volts", "output"]
    assert not supply.on


async def test_cancelled_it_switches_the_output_off(autojump_clock: MockClock) -> None:
    supply = FakeSupply(latency=0.01)
    origin = trio.current_time()
    with trio.move_on_after(2.5):
        await follow(supply, BROWNOUT, origin=origin, poll_rate=5.0)
    assert supply.calls[-1] == (pytest.approx(origin + 2.51), "output", False)
    assert not supply.on


async def test_on_an_error_it_switches_the_output_off_and_raises_the_error(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply()
    supply.fail = {("volts", 3.0)}
    origin = trio.current_time()
    with pytest.raises(SupplyError, match=r"^fake: refused volts 3\.0$"):
        await follow(supply, BROWNOUT, origin=origin, poll_rate=0)
    assert supply.calls[-1] == (pytest.approx(origin + 3.0), "output", False)


async def test_if_the_output_cannot_be_switched_off_the_user_is_told_to_do_it(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply()
    supply.fail = {("output", False)}
    with pytest.raises(SupplyError) as err:
        await follow(supply, BROWNOUT, origin=trio.current_time(), poll_rate=0)
    assert str(err.value) == (
        "fake: the output could not be switched off at the end (fake: refused output False); "
        "it is as last set: switch it off by hand"
    )


async def test_an_error_and_an_output_left_on_are_both_told(autojump_clock: MockClock) -> None:
    supply = FakeSupply()
    supply.fail = {("volts", 3.0), ("output", False)}
    with pytest.raises(SupplyError) as err:
        await follow(supply, BROWNOUT, origin=trio.current_time(), poll_rate=0)
    assert str(err.value) == (
        "fake: refused volts 3.0; then fake: the output could not be switched off at the end "
        "(fake: refused output False); it is as last set: switch it off by hand"
    )
    assert supply.on


async def test_a_supply_that_hangs_at_the_end_is_given_up_on_after_the_timeout(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply()
    supply.hang = ("output", False)
    origin = trio.current_time()
    with pytest.raises(SupplyError, match=r"\(no answer within 5 s\)"):
        await follow(supply, BROWNOUT, origin=origin, poll_rate=0, until=0.5)
    assert trio.current_time() == pytest.approx(origin + 5.5)


async def test_safe_volts_leaves_the_output_on_at_that_level(autojump_clock: MockClock) -> None:
    supply = FakeSupply()
    limits = Limits(max_volts=5.5, max_amps=0.5, safe_volts=3.3)
    origin = trio.current_time()
    await follow(supply, BROWNOUT, origin=origin, limits=limits, poll_rate=0)
    assert supply.calls[0][1:] == ("current_limit", 0.5)
    assert supply.calls[-1][1:] == ("volts", 3.3)
    assert supply.on


async def test_it_holds_the_last_value_until_told_when_to_stop(autojump_clock: MockClock) -> None:
    supply = FakeSupply()
    origin = trio.current_time()
    await follow(supply, BROWNOUT, origin=origin, until=9.0, poll_rate=0)
    assert supply.calls[-1] == (pytest.approx(origin + 9.0), "output", False)


async def test_started_late_it_begins_at_the_profiles_present_value(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply()
    origin = trio.current_time()
    await trio.sleep(2.5)
    await follow(supply, BROWNOUT, origin=origin, poll_rate=0)
    assert supply.calls[1] == (pytest.approx(origin + 2.5), "volts", pytest.approx(4.0))


async def test_a_profile_beyond_the_limits_is_refused_before_anything_is_set(
    autojump_clock: MockClock,
) -> None:
    supply = FakeSupply()
    limits = Limits(max_volts=4.5, max_amps=0.5)
    with pytest.raises(UserError) as err:
        await follow(supply, BROWNOUT, origin=trio.current_time(), limits=limits)
    assert str(err.value) == "supply[1] at 0s: 5 V is above the bench's max_volts 4.5 V"
    assert supply.calls == []
