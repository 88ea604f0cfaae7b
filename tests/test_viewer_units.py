"""The viewer's pieces without a server: live statistics against brute force, and the per-client
queues that keep a slow browser from ever holding up the run."""

from __future__ import annotations

import io
import json
import math
import random
from collections import deque
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from harness.errors import UserError
from harness.link import Sample
from harness.runner.bus import Bus, SampleEvent
from harness.runner.context import RunContext, RunOptions
from harness.runner.observer import Observer
from harness.scenario.load import load
from harness.viewer import stats as stats_module
from harness.viewer.hub import Client, Hub, Item, dumps
from harness.viewer.live import LiveSample, LiveState, Window, sample_json, sample_message
from harness.viewer.server import parse_bind, warn_if_exposed
from harness.viewer.stats import MOVING, WINDOW, RollingStats

T0 = 1_800_000_000.0


def _feed(stats: RollingStats, rows: list[tuple[float, ...]]) -> list[tuple[str, ...]]:
    flags = []
    for t, v, a, n in rows:
        flags.append(stats.add(t, v, a, v * a, v - 0.01, v + 0.02, a + 0.001, int(n), 0.1))
    return flags


def _brute(rows: list[tuple[float, ...]], seconds: int) -> dict[str, dict[str, float]]:
    newest = math.floor(rows[-1][0])
    inside = [r for r in rows if math.floor(r[0]) > newest - seconds]
    n = sum(r[3] for r in inside)
    out = {}
    for name, value, low, high in (
        ("v", lambda r: r[1], lambda r: r[1] - 0.01, lambda r: r[1] + 0.02),
        ("a", lambda r: r[2], lambda r: r[2], lambda r: r[2] + 0.001),
        ("w", lambda r: r[1] * r[2], lambda r: r[1] * r[2], lambda r: r[1] * r[2]),
    ):
        out[name] = {
            "min": min(low(r) for r in inside),
            "max": max(high(r) for r in inside),
            "avg": sum(value(r) * r[3] for r in inside) / n,
        }
    return out


def test_minute_and_moving_averages_match_brute_force() -> None:
    rng = random.Random(5)
    rows = []
    for i in range(20 * 60 * 10):  # 20 minutes at 10 Hz, uneven reading counts
        t = T0 + i / 10 + rng.uniform(0, 0.05)
        rows.append((t, 5 + rng.gauss(0, 0.05), 0.25 + rng.gauss(0, 0.01), rng.randint(1, 60)))
    stats = RollingStats()
    _feed(stats, rows)
    snap = stats.snapshot()
    want = _brute(rows, WINDOW)
    assert snap["window"]["samples"] == sum(
        1 for r in rows if math.floor(r[0]) > math.floor(rows[-1][0]) - WINDOW
    )
    for m in "vaw":
        for k in ("min", "max", "avg"):
            assert snap["window"][m][k] == pytest.approx(want[m][k], abs=2e-6), (m, k)
    for seconds in MOVING:
        want = _brute(rows, seconds)
        got = snap["moving"][f"{seconds // 60}m"]
        for m in "vaw":
            assert got[m] == pytest.approx(want[m]["avg"], abs=2e-6), (seconds, m)
    # Memory is bounded by the longest window, not by how long the run is.
    assert stats.kept <= max(MOVING) + 1


def test_energy_and_charge_since_start() -> None:
    stats = RollingStats()
    for i in range(3600):  # one hour of 1 s samples at 5 V, 0.25 A
        stats.add(T0 + i + 1, 5.0, 0.25, 1.25, 5.0, 5.0, 0.25, 100, 1.0)
    energy = stats.snapshot()["energy"]
    assert energy["wh"] == pytest.approx(1.25)
    assert energy["mah"] == pytest.approx(250.0)
    assert energy["seconds"] == pytest.approx(3600)


def test_z_score_flags_a_spike_and_not_the_noise() -> None:
    rng = random.Random(11)
    stats = RollingStats()
    flagged = []
    for i in range(600):  # 60 s at 10 Hz of a noisy 5 V rail
        v = 5.0 + rng.gauss(0, 0.01)
        flagged.append(stats.add(T0 + i / 10, v, 0.25, v * 0.25, v, v, 0.25, 10, 0.1))
    noise_flags = sum(bool(f) for f in flagged)
    assert noise_flags <= 6  # |z| > 3 is 0.27 % of Gaussian noise
    spike = stats.add(T0 + 60.05, 4.7, 0.25, 4.7 * 0.25, 4.7, 4.7, 0.25, 10, 0.1)
    assert spike == ("v", "w")
    assert stats.snapshot()["outliers"] == noise_flags + 1


def test_a_spike_in_the_first_second_is_flagged() -> None:
    """Before a minute of reference exists, the second's own samples so far are the reference."""
    stats = RollingStats()
    early = [stats.add(T0 + i / 100, 5.0, 0.25, 1.25, 5.0, 5.0, 0.25, 10, 0.01) for i in range(30)]
    assert not any(early)
    assert stats.add(T0 + 0.305, 6.0, 0.25, 1.5, 6.0, 6.0, 0.25, 10, 0.01) == ("v", "w")


def test_z_score_needs_samples_and_a_floor() -> None:
    stats = RollingStats()
    early = [
        stats.add(T0 + i, 5.0 if i < 4 else 3.0, 0.25, 1.25, 5, 5, 0.25, 1, 1) for i in range(5)
    ]
    assert not any(early)  # four samples say nothing yet
    sag = RollingStats()  # at 1 report/s, a sag after five steady samples is flagged
    for i in range(5):
        assert sag.add(T0 + i, 5.0, 0.25, 1.25, 5.0, 5.0, 0.25, 100, 1.0) == ()
    assert sag.add(T0 + 5, 4.5, 0.25, 1.125, 4.4, 4.6, 0.25, 100, 1.0) == ("v", "w")
    steady = RollingStats()
    for i in range(30):
        steady.add(T0 + i, 5.0, 0.25, 1.25, 5.0, 5.0, 0.25, 10, 1.0)
    # A perfectly flat rail: one INA219 step (4 mV) is not an outlier, four are.
    assert steady.add(T0 + 30, 5.004, 0.25, 1.251, 5.004, 5.004, 0.25, 10, 1.0) == ()
    assert steady.add(T0 + 31, 5.016, 0.25, 1.254, 5.016, 5.016, 0.25, 10, 1.0) == ("v",)


def _drain(client: Client) -> list[str]:
    return client.take()


def _samples(messages: list[str]) -> list[dict[str, Any]]:
    """Every sample of the `measurements` messages, in order."""
    items = []
    for text in messages:
        message = json.loads(text)
        if message["type"] == "measurements":
            items.extend(message["items"])
    return items


def test_a_client_that_stops_reading_keeps_the_newest_and_is_told_what_it_missed() -> None:
    hub = Hub(sample_queue=16, event_queue=4)
    slow, fast = hub.add(), hub.add()
    received_fast = 0
    for seq in range(1000):
        hub.sample({"seq": seq})
        received_fast += len(_samples(_drain(fast)))
        assert slow.queued <= 16  # bounded whatever happens
    assert received_fast == 1000
    messages = _drain(slow)
    assert len(messages) == 1  # everything waiting, in one message
    assert messages[0].startswith(
        '{"type":"measurements","items":[{"missed":984,"data":{"seq":984}},'
    )
    items = _samples(messages)
    assert [i["data"]["seq"] for i in items] == list(range(984, 1000))
    assert all(i["missed"] == 0 for i in items[1:])
    assert slow.missed == 984
    for k in range(10):
        hub.event({"kind": "log", "k": k})
    events = _drain(slow)
    assert len(events) == 1
    assert [e["k"] for e in json.loads(events[0])["items"]] == [6, 7, 8, 9]
    assert slow.events_missed == 6


def test_stats_and_progress_coalesce_and_never_hold_back_samples() -> None:
    hub = Hub()
    client = hub.add()
    hub.slot("stats", {"n": 1})
    hub.sample({"seq": 1})
    for n in range(2, 50):
        hub.slot("stats", {"n": n})
    hub.slot("progress", {"p": 1})
    hub.sample({"seq": 2})
    # One message of each kind: the samples first, then the newest stats (with this client's
    # dropped counts) and progress.
    assert _drain(client) == [
        '{"type":"measurements","items":[{"missed":0,"data":{"seq":1}},{"missed":0,"data":{"seq":2}}]}',
        '{"type":"stats","client":{"missed":0,"events_missed":0},"data":{"n":49}}',
        '{"type":"progress","data":{"p":1}}',
    ]
    assert _drain(client) == []


def test_an_item_is_encoded_once_for_every_client() -> None:
    item = Item({"v": 5.0})
    assert item.text is item.text


async def test_wait_wakes_on_push_and_on_close() -> None:
    client = Client()
    async with trio.open_nursery() as nursery:
        woke = []

        async def waiter() -> None:
            await client.wait()
            woke.extend(client.take())
            await client.wait()
            woke.append(client.closed)

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert woke == []
        client.push_sample(Item({"seq": 1}))
        await trio.testing.wait_all_tasks_blocked()
        assert woke == ['{"type":"measurements","items":[{"missed":0,"data":{"seq":1}}]}']
        client.close()
    assert woke[-1] is True


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_bind_addresses(bind: str, expected: tuple[str, int]) -> None:
    assert parse_bind(bind) == expected


@pytest.mark.parametrize("bind", ["8000", ":8000", "127.0.0.1:http", "127.0.0.1:70000", "::1:80"])
def test_bad_bind_is_one_line(bind: str) -> None:
    with pytest.raises(UserError) as info:
        parse_bind(bind)
    assert str(info.value).startswith(f"--bind {bind}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("127.0.0.1", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("192.0.2.7", True),
    ],
)
def test_a_non_loopback_bind_is_warned_about(host: str, warned: bool) -> None:
    err = io.StringIO()
    warn_if_exposed(host, 8000, err)
    text = err.getvalue()
    assert bool(text) == warned
    if warned:
        assert text.startswith(f"viewer: warning: serving on {host}:8000, which other machines")


async def test_a_viewer_error_never_reaches_the_run() -> None:
    """A bug in the viewer's bus subscriber stops the viewer, not the link that published."""
    scenario = load(Path("scenarios/brownout.toml"))
    bus = Bus()
    origin = trio.current_time()
    ctx = RunContext(scenario, RunOptions(), 7, origin, bus, Observer(scenario, origin, bus))
    err = io.StringIO()
    live = LiveState(ctx, err=err)
    client = live.hub.add()
    bus.subscribe(live.take)

    def broken(*args: object) -> tuple[str, ...]:
        raise ZeroDivisionError("a bug")

    live.stats.add = broken  # type: ignore[method-assign]
    sample = Sample(0, 1, 1000, 1000, 5.0, 0.25, 1.25, 4.99, 5.01, 0.26, 50, "ok")
    for _ in range(3):
        bus.publish(SampleEvent(sample, 0.0, 1.0, 1.0))  # does not raise
    assert err.getvalue() == (
        "viewer: stopped following the run after an error (ZeroDivisionError: a bug); "
        "the run goes on\n"
    )
    assert client.closed and live.failed


def test_sample_messages_are_the_text_json_dumps_would_write() -> None:
    """The live page's per-sample message skips json.dumps for speed: same text, every shape
    a sample takes (whole-number floats, negative current, outliers or none)."""
    rng = random.Random(5)
    for i in range(500):
        v = rng.choice([5.0, 0.0, round(rng.uniform(0, 32), 3)])
        a = rng.choice([0.0, -0.25, round(rng.uniform(-3.2, 3.2), 4)])
        s = Sample(
            seq=i,
            boot=rng.randrange(2**16),
            ts=rng.randrange(2**32),
            dt=rng.randrange(10, 5000),
            v=v,
            a=a,
            w=round(abs(v * a), 3),
            vmin=v,
            vmax=v + 0.004,
            amax=abs(a),
            n=rng.randrange(1, 200),
            status=rng.choice(["ok", "uv", "oc", "i2c"]),
        )
        outlier = tuple(rng.sample(["v", "a", "w"], rng.randrange(1, 4))) if i % 3 == 0 else ()
        m = LiveSample(s, 1.8e9 + i / 7, 1.8e9 + i / 7 + 1e-4 / 3, outlier)
        assert sample_json(m) == dumps(sample_message(m))


def test_the_window_keeps_what_a_deque_of_the_samples_would() -> None:
    """The last minute as columns in rings: the same samples, statuses and outliers as a
    deque(maxlen) of them pruned from the front by time, whatever the order times come in."""
    rng = random.Random(3)
    for capacity in (1, 2, 7, 50):
        window = Window(capacity)
        kept: deque[tuple[float, int, str, tuple[str, ...]]] = deque(maxlen=capacity)
        t = T0
        for i in range(3000):
            t += rng.choice((0.01, 0.5, 3.0, -1.0, 10.0))
            status = rng.choice(("ok", "uv"))
            flagged = rng.choice(((), (), ("v",), ("a", "w")))
            window.append(t, i, i + 0.5, i + 0.25, i - 1, i + 1, i + 2, status, flagged)
            kept.append((t, i, status, flagged))
            window.prune(t - 5)
            while kept[0][0] < t - 5:
                kept.popleft()
            backlog = window.backlog()
            assert len(window) == len(kept)
            assert backlog["t"] == [round(k[0], 3) for k in kept]
            assert backlog["v"] == [k[1] for k in kept]
            assert backlog["amax"] == [k[1] + 2 for k in kept]
            assert backlog["status"] == [k[2] for k in kept]
            offset = {"v": 0.0, "a": 0.5, "w": 0.25}
            assert list(window.outliers()) == [
                [round(k[0], 3), m, k[1] + offset[m]] for k in kept for m in k[3]
            ]


def test_statistics_are_the_same_when_a_second_is_folded() -> None:
    """A second with more than FOLD_SAMPLES samples is totalled FOLD_SAMPLES at a time: every
    figure and every outlier is the one the whole second totalled at once gives (to the last
    digits a sum in another order may change)."""

    def figures(fold: int, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
        monkeypatch.setattr(stats_module, "_FOLD_VALUES", fold * stats_module.ROW)
        stats, rng, out = RollingStats(), random.Random(5), []
        t = T0
        for i in range(20_000):
            t += rng.choice((0.0001, 0.001, 0.01, 0.3))
            v, a = 5 + rng.gauss(0, 0.01), 0.25 + rng.gauss(0, 0.001)
            if i % 4999 == 4998:
                v = 4.0  # a sag the z-score flags
            n, dt = rng.choice((0, 1, 50, 50)), rng.choice((0.01, 0.02))
            out.append(stats.add(t, v, a, v * a, v - 0.01, v + 0.01, a + 0.001, n, dt))
            if i % 997 == 0:
                out.append(stats.snapshot())
        return [*out, stats.snapshot()]

    def close(x: Any, y: Any) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6)
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
            return len(x) == len(y) and all(map(close, x, y))
        return bool(x == y)

    with pytest.MonkeyPatch.context() as monkeypatch:
        whole = figures(10**9, monkeypatch)
        assert any(type(x) is tuple and x for x in whole), "no outlier flagged"
        for fold in (1, 7, stats_module.FOLD_SAMPLES):
            assert close(figures(fold, monkeypatch), whole), fold


async def test_the_live_page_counts_retransmissions_as_the_record_does(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One definition everywhere: the live link health's retransmissions are the record's
    (samples that came again plus command resends), on a link that loses commands too."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from harness.runner.run import run_scenario

    seen: dict[str, int] = {}

    @asynccontextmanager
    async def live_page(ctx: RunContext) -> AsyncIterator[None]:
        live = LiveState(ctx)
        unsubscribe = ctx.bus.subscribe(live.take)
        try:
            yield
        finally:
            unsubscribe()
            seen.update(live.health())

    scenario = load("scenarios/lossy-link.toml")
    result = await run_scenario(scenario, RunOptions(fast=True, out=io.StringIO()), (live_page,))
    link = result.record.link
    assert link.retransmissions > 0
    assert seen["retransmissions"] == link.retransmissions


async def test_the_brownouts_sag_is_flagged_at_one_report_a_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from harness.runner.run import run_scenario

    flagged: list[float] = []

    @asynccontextmanager
    async def live_page(ctx: RunContext) -> AsyncIterator[None]:
        live = LiveState(ctx)

        def take(item: object) -> None:
            live.take(item)  # type: ignore[arg-type]
            if isinstance(item, SampleEvent) and live.last is not None and live.last.outlier:
                flagged.append(item.end)

        unsubscribe = ctx.bus.subscribe(take)
        try:
            yield
        finally:
            unsubscribe()

    result = await run_scenario(
        load("scenarios/brownout.toml"), RunOptions(fast=True, out=io.StringIO()), (live_page,)
    )
    assert result.exit_code == 0
    assert any(6.0 <= t <= 13.0 for t in flagged), flagged  # the sag from 6 s, back by 12 s


async def test_a_welcome_built_a_device_at_a_time_misses_nothing_and_sends_nothing_twice() -> None:
    """Samples published while a new page's hello is being built (between its devices) are in
    their device's backlog or in the messages after it, once; a device the run does not list
    is in the hello with no target; the first device's last minute is at the hello's top."""
    scenario = load(Path("scenarios/brownout.toml"))
    bus = Bus()
    origin = trio.current_time()
    ctx = RunContext(scenario, RunOptions(), 7, origin, bus, Observer(scenario, origin, bus))
    live = LiveState(ctx)
    bus.subscribe(live.take)
    (name,) = live.devices
    seq = 0

    def publish(device: str) -> None:
        nonlocal seq
        s = Sample(seq, 1, seq + 1, 1, 5.0, 0.25, 1.25, 4.99, 5.01, 0.26, 1, "ok")
        bus.publish(SampleEvent(s, seq / 1000, (seq + 1) / 1000, seq / 1000, device))
        seq += 1

    for _ in range(3):
        publish(name)
        publish("bench-extra")
    client = live.hub.add()
    async with trio.open_nursery() as nursery:

        async def between_devices() -> None:
            for _ in range(4):  # while the hello is built, a device at a time
                publish(name)
                publish("bench-extra")
                await trio.lowlevel.checkpoint()

        nursery.start_soon(between_devices)
        hello = json.loads(await live.welcome(client))["data"]
    publish(name)
    devices = {d["name"]: d for d in hello["devices"]}
    assert [d["name"] for d in hello["devices"]] == [name, "bench-extra"]
    assert devices[name]["target"] == "mock" and devices["bench-extra"]["target"] is None
    assert all(hello[k] == hello["devices"][0][k] for k in ("backlog", "outliers", "supply"))
    messages = [json.loads(text) for text in client.take()]
    samples = next(m["items"] for m in messages if m["type"] == "measurements")
    assert all(item["missed"] == 0 for item in samples)
    for device, found in devices.items():
        later = [item["data"]["ts"] for item in samples if item["device"] == device]
        published = 7 if device == "bench-extra" else 8  # 3 before, 4 while, the one after
        assert len(found["backlog"]["t"]) + len(later) == published, device
    stats = next(m for m in messages if m["type"] == "stats")
    assert list(stats["devices"]) == [name]  # the unlisted device has no panels' stats
