"""What the live page shows of a run, kept up to date from the bus.

`LiveState.take` is the bus subscriber: it runs inside the link's own call chain, so it only
does bounded, constant work (update the device's statistics and last minute of samples, hand the
sample to each client's bounded queue) and never waits. Anything heavier (link health, progress,
the statistics panel) is built twice a second by `run`, a device at a time, and only while
someone is watching. Nothing here writes to a session: the viewer cannot reach the devices.

A run of several devices keeps one `DeviceLive` per device (its statistics, window, readbacks
and rates), found by the name every bus item carries; every message about a device names it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from array import array
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

import trio

from harness.link import Sample
from harness.runner.bus import Published, RunEvent, SampleEvent
from harness.viewer.hub import SAMPLE_QUEUE, Client, Hub, Item, dumps
from harness.viewer.stats import MEASURES, WINDOW, RollingStats

if TYPE_CHECKING:
    from harness.runner.context import DeviceRun, RunContext

TICK = 0.5
"""Seconds between stats and progress messages."""
BACKLOG_MAX = 6000
"""Samples of the last minute a new client gets at most of one device (60 s at 100 Hz)."""
BACKLOG_TOTAL = 12_000
"""Samples the windows of all devices hold together at most: each device's window has its share
(at most BACKLOG_MAX, at least BACKLOG_MIN), so the memory the windows take and the size of a
new client's hello stay bounded however many devices the run has."""
BACKLOG_MIN = 120
"""Samples a device's window holds at least (two minutes at the default 1 report a second)."""
FEED = 100
"""Recent events kept for a new client."""
FEED_KINDS = frozenset(
    (
        "run",
        "hello",
        "reset",
        "power",
        "sensor",
        "alert",
        "command",
        "step",
        "expectation",
        "gap",
        "log",
        "store",
        "silent",
        "reporting",
        "other_device",
        "device",
        "supply",
        "announcement",
    )
)
"""Event kinds sent one by one; the high-volume link faults (fault, corrupt, retransmission,
duplicate) only show as counters in the link health. The bench supply's readbacks go to the
chart instead (`readback` messages)."""
READBACKS_MAX = 1200
"""Readbacks of the last minute a new client gets at most (60 s at 20 a second)."""


def _ramp_step(e: RunEvent) -> bool:
    """A supply setting along a ramp (up to 20 a second): the chart's readback shows those; the
    feed lists the points reached, the output and the current limit."""
    d = e.data
    return e.kind == "supply" and d.get("what") == "volts" and d.get("point") is None


def clean(x: Any) -> Any:
    """JSON-safe values: non-finite floats become None."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean(v) for v in x]
    return x


class LiveSample(NamedTuple):
    """A sample as the live page gets it."""

    sample: Sample
    t: float
    """Unix seconds of its end (sent rounded to ms)."""
    arrived: float
    """Unix seconds when the host delivered it (sent rounded to µs)."""
    outlier: tuple[str, ...]
    """The measures that are outliers against the minute before."""


_new_live_sample = tuple.__new__
"""Builds a LiveSample from a tuple of its fields (skips the keyword-taking __new__)."""

DEVICE_WINDOW = ("backlog", "outliers", "supply")
"""A device's last minute in the hello."""
COLUMNS = ("t", "v", "a", "w", "vmin", "vmax", "amax")
"""The window's float columns: what a new page's backlog shows of a sample besides its status."""


class Window:
    """The last minute of samples as a new page gets it (`LiveState.hello`): the values it
    shows, column by column in arrays of doubles, the status words in a list (the decoder's
    shared str objects), and the few outliers by their place. A sample costs eight slots here
    instead of its Sample, its LiveSample and a dozen number objects, and the garbage collector
    has nothing to walk.

    It keeps what a `deque(maxlen=capacity)` of the samples would: appended at the end, the
    oldest dropped past `capacity`, and `prune` drops from the front while the oldest is older
    than a horizon. The columns are rings of `capacity` slots, allocated once: sample number
    k (counted from the first ever appended) is in slot k % capacity, so nothing is moved or
    reallocated as the window goes on."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.columns: tuple[array[float], ...] = tuple(
            array("d", bytes(8 * capacity)) for _ in COLUMNS
        )
        self.status: list[str] = [""] * capacity
        self._first = 0
        """Number of the oldest sample kept."""
        self._next = 0
        """Number the next sample appended gets."""
        self._outliers: deque[tuple[int, tuple[str, ...]]] = deque()
        """(sample number, the measures flagged) of each outlier, oldest first; those older
        than the oldest kept are dropped as the window moves on."""

    def __len__(self) -> int:
        return self._next - self._first

    def append(
        self,
        t: float,
        v: float,
        a: float,
        w: float,
        vmin: float,
        vmax: float,
        amax: float,
        status: str,
        outlier: tuple[str, ...],
    ) -> None:
        number = self._next
        i = number % self.capacity
        ct, cv, ca, cw, cvmin, cvmax, camax = self.columns
        ct[i] = t
        cv[i] = v
        ca[i] = a
        cw[i] = w
        cvmin[i] = vmin
        cvmax[i] = vmax
        camax[i] = amax
        self.status[i] = status
        if outlier:
            self._outliers.append((number, outlier))
        self._next = number + 1
        if number - self._first >= self.capacity:
            self._first += 1
            self._dropped()

    def prune(self, horizon: float) -> None:
        """Drop samples from the front while the oldest ended before `horizon` (never the
        newest: its own time is the horizon's reference)."""
        t, capacity = self.columns[0], self.capacity
        first, last = self._first, self._next - 1
        if first < last and t[first % capacity] < horizon:
            first += 1
            while first < last and t[first % capacity] < horizon:
                first += 1
            self._first = first
            self._dropped()

    def _dropped(self) -> None:
        """The front moved: forget the outliers before it."""
        outliers, first = self._outliers, self._first
        while outliers and outliers[0][0] < first:
            outliers.popleft()

    def _span(self, values: array[float] | list[str]) -> list[Any]:
        """The kept samples' slots of one column, oldest first."""
        if not len(self):
            return []
        capacity = self.capacity
        i, j = self._first % capacity, self._next % capacity
        if i < j:
            return list(values[i:j])
        return list(values[i:]) + list(values[:j])

    def backlog(self) -> dict[str, list[Any]]:
        """The kept samples by column (t rounded to ms, as a sample message sends it)."""
        out = {name: self._span(column) for name, column in zip(COLUMNS, self.columns, strict=True)}
        out["t"] = [round(t, 3) for t in out["t"]]
        out["status"] = self._span(self.status)
        return out

    def outliers(self) -> Iterator[list[Any]]:
        """[t (ms), measure, value] of each flagged measure of the kept samples, oldest first."""
        first, capacity = self._first, self.capacity
        t = self.columns[0]
        for number, measures in self._outliers:
            if number < first:
                continue
            i = number % capacity
            for measure in measures:
                value = self.columns[1 + MEASURES.index(measure)][i]
                yield [round(t[i], 3), measure, value]


def sample_message(m: LiveSample) -> dict[str, Any]:
    """A sample's `data` in a `measurements` message (and `last` in the status)."""
    s = m.sample
    data: dict[str, Any] = {
        "v": s.v,
        "a": s.a,
        "w": s.w,
        "ts": s.ts,
        "seq": s.seq,
        "status": s.status,
        "boot": s.boot,
        "vmin": s.vmin,
        "vmax": s.vmax,
        "amax": s.amax,
        "n": s.n,
        "dt": s.dt,
        "t": round(m.t, 3),
        "arrived": round(m.arrived, 6),
    }
    if m.outlier:
        data["outlier"] = list(m.outlier)
    return data


def sample_json(m: LiveSample) -> str:
    """`sample_message(m)` as json.dumps writes it (floats by repr), without building the dict
    or json's generic walk: it runs for every sample a page is sent. Every value is finite
    (checked when the frame was decoded) and `status` and outlier names are plain lower-case
    words. A test holds the two equal."""
    s = m.sample
    extra = "" if not m.outlier else ',"outlier":["' + '","'.join(m.outlier) + '"]'
    return (
        f'{{"v":{s.v!r},"a":{s.a!r},"w":{s.w!r},"ts":{s.ts},"seq":{s.seq},'
        f'"status":"{s.status}","boot":{s.boot},"vmin":{s.vmin!r},'
        f'"vmax":{s.vmax!r},"amax":{s.amax!r},"n":{s.n},"dt":{s.dt},'
        f'"t":{round(m.t, 3)!r},"arrived":{round(m.arrived, 6)!r}{extra}}}'
    )


QUEUE_SCALE = 16
"""A client's sample queue holds SAMPLE_QUEUE samples for each device, up to this many devices'
worth: enough for the samples that come while its task waits for its turn, bounded however many
devices the run has."""


def backlog_capacity(devices: int) -> int:
    """The window each of `devices` devices keeps (its share of BACKLOG_TOTAL)."""
    return max(BACKLOG_MIN, min(BACKLOG_MAX, BACKLOG_TOTAL // max(1, devices)))


class DeviceFeed:
    """What the live state keeps of one device's samples and readbacks."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.key = json.dumps(name)
        """The name as JSON text, written into every message about the device."""
        self.stats = RollingStats()
        self.window = Window(capacity)
        self.readbacks: deque[tuple[float, float, float]] = deque(maxlen=READBACKS_MAX)
        """Its bench supply's readbacks: (unix seconds, volts, amps)."""
        self.last: LiveSample | None = None
        self.rates: deque[tuple[float, int, int]] = deque(maxlen=8)
        """(trio time, frames in, samples) at the last ticks: the link's rates."""


class DeviceLive(DeviceFeed):
    """A device of the run, with the run's own view of it (its scenario, target, observer and
    session), from which its panels are built."""

    def __init__(self, run: DeviceRun, capacity: int) -> None:
        super().__init__(run.name, capacity)
        self.run = run


class LiveState:
    def __init__(self, ctx: RunContext, hub: Hub | None = None, err: TextIO = sys.stderr) -> None:
        self.ctx = ctx
        runs = getattr(ctx, "devices", None) or {}
        count = len(runs)
        self.hub = hub or Hub(sample_queue=SAMPLE_QUEUE * min(max(count, 1), QUEUE_SCALE))
        self.err = err
        self.failed: str | None = None
        self.wall0 = ctx.wall0
        self.capacity = backlog_capacity(count)
        self.devices: dict[str, DeviceLive] = {
            name: DeviceLive(run, self.capacity) for name, run in runs.items()
        }
        """Every device of the run by name, in the scenario's order."""
        self.unlisted: dict[str, DeviceFeed] = {}
        """Devices the bus names that the context does not list (a pipeline fed by hand, as
        the ingest bench's): their samples are kept and sent all the same; they have no
        panels."""
        self.feed: deque[dict[str, Any]] = deque(maxlen=FEED)
        self._wall_at_0 = 0.0
        self._wall_until = -math.inf
        self.ended = False
        self._finished = trio.Event()

    @property
    def first(self) -> DeviceLive:
        """The first device (the one `ctx.observer` is)."""
        return next(iter(self.devices.values()))

    @property
    def stats(self) -> RollingStats:
        """The first device's statistics."""
        return self.first.stats

    @property
    def window(self) -> Window:
        """The first device's last minute."""
        return self.first.window

    @property
    def last(self) -> LiveSample | None:
        """The first device's last sample."""
        return self.first.last

    def _unlisted(self, device: str) -> DeviceFeed:
        found = self.unlisted.get(device)
        if found is None:
            found = self.unlisted[device] = DeviceFeed(device, self.capacity)
        return found

    def _key(self, device: str) -> str:
        found = self.devices.get(device)
        return json.dumps(device) if found is None else found.key

    # --- the bus subscriber (sync, bounded work) -------------------------------------------

    def take(self, item: Published) -> None:
        if self.failed is not None:
            return
        try:
            if type(item) is SampleEvent:
                self._sample(item)
            else:
                self._take(item)
        except Exception as exc:  # a viewer bug must not reach the link's call chain
            self.fail(exc)

    def fail(self, exc: Exception) -> None:
        """Stop following the run (the run goes on): say so once, close the pages."""
        if self.failed is None:
            self.failed = f"{type(exc).__name__}: {exc}"
            print(
                f"viewer: stopped following the run after an error ({self.failed}); the run goes on",
                file=self.err,
                flush=True,
            )
            self.hub.close_all()

    def _take(self, item: Published) -> None:
        if isinstance(item, RunEvent) and item.kind == "readback":
            self._readback(item)
        elif isinstance(item, RunEvent) and item.kind in FEED_KINDS and not _ramp_step(item):
            data = {
                "kind": item.kind,
                "device": item.device,
                "at": round(item.at, 3),
                "t": round(self.wall0 + item.at, 3),
                "data": clean(item.data),
            }
            self.feed.append(data)
            self.hub.event(data, self._key(item.device))
            if not self.hub.clients:
                return
            if item.kind == "run":  # the run's start or end: every device's progress says it
                self.hub.slots(
                    "progress",
                    [Item(self.progress(d), device=d.key) for d in self.devices.values()],
                )
            elif item.kind in ("step", "expectation") and item.device in self.devices:
                d = self.devices[item.device]
                self.hub.slot("progress", self.progress(d), d.key)

    def _readback(self, e: RunEvent) -> None:
        """The supply's readback, for the device's chart's second trace: kept for the last
        minute and sent as a `readback` message (coalesced for a client that falls behind: the
        chart then skips a point of the trace, never the samples)."""
        d = self.devices.get(e.device)
        if d is None:
            return
        t = self.wall0 + e.at
        volts, amps = e.data["volts"], e.data["amps"]
        readbacks = d.readbacks
        readbacks.append((t, volts, amps))
        while readbacks[0][0] < t - WINDOW:
            readbacks.popleft()
        if self.hub.clients:
            self.hub.slot("readback", clean({"t": round(t, 3), "v": volts, "a": amps}), d.key)

    def _sample(self, ev: SampleEvent) -> None:
        """Per sample, so kept to the minimum: the device's statistics and last minute, the
        clients' queues. Rounding and JSON wait until a client sends it."""
        d = self.devices.get(ev.device) or self._unlisted(ev.device)
        s = ev.sample
        t = self.wall0 + ev.end
        _, _, _, dt, v, a, w, vmin, vmax, amax, n, status = s  # one unpack, not 9 lookups
        flagged = d.stats.add(t, v, a, w, vmin, vmax, amax, n, dt / 1000)
        if ev.arrived >= self._wall_until:
            # Unix seconds at scenario time 0, read again every second (clocks drift apart)
            self._wall_at_0 = time.time() - (trio.current_time() - self.ctx.origin)
            self._wall_until = ev.arrived + 1.0
        m = _new_live_sample(LiveSample, (s, t, self._wall_at_0 + ev.arrived, flagged))
        d.last = m
        window = d.window
        window.append(t, v, a, w, vmin, vmax, amax, status, flagged)
        window.prune(t - WINDOW)
        if self.hub.clients:
            self.hub.sample(m, sample_json, d.key)

    # --- snapshots ------------------------------------------------------------------------

    def now(self) -> float:
        """Scenario seconds now."""
        return trio.current_time() - self.ctx.origin

    def run_info(self) -> dict[str, Any]:
        ctx = self.ctx
        sc = ctx.scenario
        return {
            "scenario": sc.name,
            "description": sc.description,
            "file": sc.file,
            "target": self.run_target(),
            "devices": list(self.devices),
            "seed": ctx.seed,
            "started": round(self.wall0, 3),
            "duration": sc.duration if math.isfinite(sc.duration) else None,
            "run_id": ctx.run_id,
            "state": "ended" if self.ended else "running",
            "verdict": self.verdict(),
        }

    def target(self, d: DeviceLive | None = None) -> str:
        """The target a device (default: the first) runs on."""
        target = (d or self.first).run.target
        return self.ctx.options.target if target is None else target.name

    def run_target(self) -> str:
        """The run's targets: the one device's, or each kind once in the devices' order
        ("mock"; "mock, board"), as the run's record says."""
        kinds = dict.fromkeys(self.target(d) for d in self.devices.values())
        return ", ".join(kinds)

    def verdict(self) -> str | None:
        record = self.ctx.record
        return None if record is None else record.verdict

    def hello_head(self) -> dict[str, Any]:
        """The hello but its devices: the run, its plan, the recent events."""
        sc = self.ctx.scenario
        return clean(
            {
                "mode": "live",
                "run": self.run_info(),
                "profile": [[p.at, p.volts, p.amps] for p in sc.supply.points],
                "steps": [
                    {"number": s.number, "name": s.name, "at": s.at, "device": s.device}
                    for s in sc.steps
                ],
                "window": WINDOW,
                "events": list(self.feed),
                "queue": {"samples": self.hub.sample_queue, "events": self.hub.event_queue},
            }
        )

    def feeds(self) -> list[DeviceFeed]:
        """Every device samples came from: the run's in order, then those it does not list."""
        return [*self.devices.values(), *self.unlisted.values()]

    def hello(self) -> dict[str, Any]:
        """Everything a new page needs at once: the run, its plan, each device's last minute
        (`devices`, in order) and, at the top as a run of one device has them, the first
        device's backlog, outliers and supply. `welcome` sends the same, built a device at a
        time."""
        hello = self.hello_head()
        devices = [clean(self.device_hello(d)) for d in self.feeds()]
        hello["devices"] = devices
        if devices:
            hello.update({k: devices[0][k] for k in DEVICE_WINDOW})
        return hello

    def device_hello(self, d: DeviceFeed) -> dict[str, Any]:
        """A device's part of the hello: its name, its target (null for a device the run does
        not list), its last minute (samples column by column, outliers, its supply's
        readbacks)."""
        return {
            "name": d.name,
            "target": self.target(d) if isinstance(d, DeviceLive) else None,
            "backlog": d.window.backlog(),
            "outliers": list(d.window.outliers()),
            "supply": {
                "t": [round(t, 3) for t, _, _ in d.readbacks],
                "v": [v for _, v, _ in d.readbacks],
                "a": [a for _, _, a in d.readbacks],
            },
        }

    async def welcome(self, client: Client) -> str:
        """A new client's hello as a message's text, with each device's stats and progress
        queued for it to send next; call it in the step the client was added in. Built a
        device at a time with a checkpoint after each, so the links run while a big hello is
        made: a device's samples are not queued for the client (`Client.unwelcomed`) until
        the step its last minute is taken for the hello, so nothing is missed and nothing
        comes twice. The events are taken in the first step, with the client's event queue."""
        feeds = self.feeds()
        client.unwelcomed = {d.key for d in feeds}
        head = dumps({"type": "hello", "data": self.hello_head()})
        parts: list[str] = []
        top = ""
        for d in feeds:
            part = self.device_hello(d)
            window = {k: dumps(clean(part.pop(k))) for k in DEVICE_WINDOW}
            client.unwelcomed.discard(d.key)
            own = dumps(part)[:-1]
            parts.append(own + "".join(f',"{k}":{v}' for k, v in window.items()) + "}")
            if not top:
                top = "".join(f',"{k}":{v}' for k, v in window.items())
            if isinstance(d, DeviceLive):
                stats, progress = (
                    Item(self.stats_message(d), device=d.key),
                    Item(self.progress(d), device=d.key),
                )
                _ = stats.text, progress.text  # encoded here, between two checkpoints
                client.put_slot("stats", stats)
                client.put_slot("progress", progress)
            await trio.lowlevel.checkpoint()
        return head[:-2] + ',"devices":[' + ",".join(parts) + "]" + top + "}}"

    def link(self, d: DeviceLive | None = None) -> dict[str, Any]:
        """A device's link (default: the first's): its state, firmware, boot and interval."""
        d = d or self.first
        obs = d.run.observer
        out: dict[str, Any] = {
            "state": "starting",
            "target": self.target(d),
            "fw": None if obs.hello is None else obs.hello.fw,
            "boot": obs.current_boot,
            "interval": None,
            "last_age": None,
            "synced": False,
        }
        session = d.run.session
        if session is None:
            return out
        last = obs.last_sample
        out["synced"] = session.link.synced
        if last is None:
            out["state"] = "waiting"
        else:
            age = self.now() - last.arrived
            interval = last.sample.dt / 1000
            out["interval"] = interval
            out["last_age"] = round(age, 3)
            out["state"] = "up" if session.link.synced and age <= max(3 * interval, 2.0) else "down"
        if d.run.error is not None:
            out["state"] = "ended"
            out["error"] = d.run.error
        if self.ended:
            out["state"] = "ended"
        return out

    def health(self, d: DeviceLive | None = None) -> dict[str, Any]:
        d = d or self.first
        session = d.run.session
        if session is None:
            return {}
        st = session.link.stats
        rates = d.rates
        per_s = {"frames_per_s": 0.0, "samples_per_s": 0.0}
        if len(rates) >= 2 and rates[-1][0] > rates[0][0]:
            span = rates[-1][0] - rates[0][0]
            per_s["frames_per_s"] = round((rates[-1][1] - rates[0][1]) / span, 2)
            per_s["samples_per_s"] = round((rates[-1][2] - rates[0][2]) / span, 2)
        return {
            **per_s,
            "frames_in": st.frames_in,
            "bytes_in": st.bytes_in,
            "samples": st.samples,
            "retransmissions": st.resent,
            "nacks_sent": st.nacks_sent,
            "acks_sent": st.acks_sent,
            "corrupt": st.corrupt,
            "duplicates_dropped": st.duplicates,
            "gaps": st.gaps,
            "resets": st.resets,
            "commands_sent": st.commands_sent,
            "commands_done": st.commands_done,
            "commands_failed": st.commands_failed,
            "command_resends": st.command_resends,
        }

    def faults(self, d: DeviceLive | None = None) -> dict[str, Any]:
        """Faults the relay injected on a device's link beside what the host observed of them."""
        d = d or self.first
        session = d.run.session
        obs = d.run.observer
        observed: dict[str, int] = {}
        if session is not None:
            st = session.link.stats
            observed = {
                "corrupt": st.corrupt,
                "gaps": st.gaps,
                "duplicates": st.duplicates,
                "retransmissions": st.resent,
            }
        return {"injected": dict(sorted(obs.injected.items())), "observed": observed}

    def store(self) -> dict[str, Any] | None:
        store = self.ctx.store
        if store is None:
            return None
        return {
            "run_id": store.run_id,
            "rows_written": store.rows_written,
            "pending": store.pending_rows,
        }

    def stats_message(self, d: DeviceLive | None = None) -> dict[str, Any]:
        """A device's statistics panel and link, with the run's store and clients."""
        d = d or self.first
        return clean(
            {
                **d.stats.snapshot(),
                "link": self.link(d),
                "health": self.health(d),
                "faults": self.faults(d),
                "store": self.store(),
                "clients": len(self.hub.clients),
            }
        )

    def progress(self, d: DeviceLive | None = None) -> dict[str, Any]:
        """The run's time and state, and a device's steps and expectations."""
        d = d or self.first
        sc = d.run.scenario
        obs = d.run.observer
        done = obs.steps_done
        current = sc.steps[done - 1] if done else None
        upcoming = sc.steps[done] if done < len(sc.steps) else None
        t = self.now()
        if math.isfinite(sc.duration):
            t = min(t, sc.duration)
        return clean(
            {
                "t": round(t, 3),
                "duration": sc.duration if math.isfinite(sc.duration) else None,
                "state": "ended" if self.ended else "running",
                "verdict": self.verdict(),
                "steps_done": done,
                "steps_total": len(sc.steps),
                "step": None
                if current is None
                else {"number": current.number, "name": current.name, "at": current.at},
                "next": None
                if upcoming is None
                else {"number": upcoming.number, "name": upcoming.name, "at": upcoming.at},
                "expectations": [ev.as_dict() for ev in obs.evaluators],
            }
        )

    def device_status(self, d: DeviceLive) -> dict[str, Any]:
        stats = self.stats_message(d)
        for run_wide in ("store", "clients"):
            stats.pop(run_wide)
        return {
            "name": d.name,
            "link": stats.pop("link"),
            "last": None if d.last is None else sample_message(d.last),
            "health": stats.pop("health"),
            "faults": stats.pop("faults"),
            "stats": stats,
            "progress": self.progress(d),
        }

    async def status(self) -> dict[str, Any]:
        """GET /api/status in a run: the run, each device's state (`devices`, in order) and,
        at the top as a run of one device has them, the first device's. A device at a time,
        with a checkpoint after each (the links run between two)."""
        devices = []
        for d in list(self.devices.values()):
            devices.append(self.device_status(d))
            await trio.lowlevel.checkpoint()
        first = {k: v for k, v in devices[0].items() if k != "name"} if devices else {}
        return {
            "mode": "live",
            "run": self.run_info(),
            **first,
            "store": self.store(),
            "clients": len(self.hub.clients),
            "devices": devices,
        }

    # --- the periodic part ----------------------------------------------------------------

    def tick_device(self, d: DeviceLive) -> tuple[Item, Item] | None:
        """A device's link rates; its stats and progress (encoded) while someone watches."""
        session = d.run.session
        if session is not None:
            st = session.link.stats
            d.rates.append((trio.current_time(), st.frames_in, st.samples))
        if not self.hub.clients:
            return None
        stats, progress = (
            Item(self.stats_message(d), device=d.key),
            Item(self.progress(d), device=d.key),
        )
        _ = stats.text, progress.text  # encoded here, not in a client's send round
        return stats, progress

    async def tick(self) -> None:
        """Every device's stats and progress, a device at a time with a checkpoint after each
        (the link tasks run between two devices' panels, so the samples' path never waits for
        every device's statistics at once), then handed to the clients in one step: a client
        sends one stats and one progress message for the tick, whatever the devices."""
        stats: list[Item] = []
        progress: list[Item] = []
        for d in list(self.devices.values()):
            if self.failed is None:
                try:
                    made = self.tick_device(d)
                except Exception as exc:
                    self.fail(exc)
                    made = None
                if made is not None:
                    stats.append(made[0])
                    progress.append(made[1])
            await trio.lowlevel.checkpoint()
        if self.failed is None:
            self.hub.slots("stats", stats)
            self.hub.slots("progress", progress)

    async def run(self) -> None:
        """Each device's stats and progress every TICK seconds, until `finish`."""
        while not self._finished.is_set():
            await self.tick()
            with trio.move_on_after(TICK):
                await self._finished.wait()

    async def finish(self) -> None:
        """The run is over (its record is made): the last stats and progress, then the end."""
        self.ended = True
        self._finished.set()
        await self.tick()
        self.hub.event(
            {
                "kind": "viewer",
                "at": round(self.now(), 3),
                "t": round(time.time(), 3),
                "data": {"state": "closing", "verdict": self.verdict()},
            }
        )
