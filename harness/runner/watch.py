"""Whether the device kept reporting, and whether a replugged port still leads to it: the check
every run makes besides the scenario's own expectations (docs/scenarios.md, "The device check").

The link totals cannot see a device that stops: on the sim and a board `lost` counts skipped
seqs, and a device that sends nothing skips none. So the watch keeps the time of the last
delivered sample and declares the device silent when none has come for a report allowance
(`REPORTS` intervals, the link's recovery bound and the round trip of the delays in force)
while the device is expected to report: powered (with a shared rail, while the profile holds
the rail at or above the brown-out level) and with no injected outage cutting the link. A boot
(the run's start, a reset step, the rail coming back, a replug) gives the device one more
default interval, for its first sample. An unplugged port is not injected: its time counts.

After a replug the device must show who it is within `REPLUG_HELLO`: a hello of the firmware the
run began with and a boot counter not behind the one the host knew, or a sample of that boot.

Sans-IO: times are scenario seconds passed in; the run calls `check` at `due()`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

from harness.faults import FaultConfig, LinkFaults
from harness.link import fields as f
from harness.link import seqnum
from harness.scenario.expect import FAIL, PASS, Outcome
from harness.scenario.model import Scenario

REPORTS = 3
"""Report intervals a sample may be late before the device counts as silent."""
RECOVERY = 3.5
"""The link's recovery bound (docs/protocol.md §8): how long the ARQ may take to deliver what
was produced once faults stop."""
DEFAULT_INTERVAL = f.DEFAULT_INTERVAL_MS / 1000
"""Seconds between reports of a device that has just booted (settings live in RAM)."""
REPLUG_HELLO = 5.0
"""Seconds a replugged device has to give a hello (the host asks for one at the replug; a board
that the port's opening resets sends its boot hello once its bootloader hands over)."""
EDGE = 1e-9
"""Slack for a scenario time computed back from a trio deadline."""

CHECK_LABEL = "device kept reporting"


@dataclass(slots=True)
class Silence:
    """One span with no sample while one was due."""

    at: float
    """When the watch declared it (the allowance after the last sample or boot had passed)."""
    last_sample: float | None
    """When the last sample before it arrived; None: none had yet."""
    until: float | None = None
    """When a sample came again; None: none did before the run ended."""


@dataclass(frozen=True, slots=True)
class Silent:
    at: float
    last_sample: float | None
    allowance: float
    """The seconds without a sample that made it silence."""


@dataclass(frozen=True, slots=True)
class Reporting:
    at: float
    silent_since: float
    last_sample: float | None


@dataclass(frozen=True, slots=True)
class OtherDevice:
    """The port leads to another device than the one the run began with."""

    at: float
    detail: str


Notice = Silent | Reporting | OtherDevice


def _passes_nothing(c: FaultConfig) -> bool:
    return c.drop >= 1.0 or c.corrupt >= 1.0


def round_trip(faults: LinkFaults) -> float:
    """The longest a frame and its answer spend on the wire with these faults: each direction's
    delay and jitter, and a longest line at its rate."""
    total = 0.0
    for c in (faults.to_host, faults.to_device):
        total += c.delay + c.jitter
        if c.rate:
            total += f.MAX_LINE / c.rate
    return total


class DeviceWatch:
    def __init__(self, scenario: Scenario) -> None:
        spec = scenario.device
        self._profile = scenario.supply if spec.shared_rail else None
        self._brownout = spec.brownout
        self._powered_at_0 = True
        self._edges: list[float] = []
        """Brown-out crossings of the rail; power alternates at each, from `_powered_at_0`."""
        if self._profile is not None:
            profile = self._profile
            self._powered_at_0 = profile.at(0.0)[0] >= spec.brownout
            self._edges = profile.crossings(spec.brownout, 0.0, profile.end + 1.0)
        self.interval = DEFAULT_INTERVAL
        """The device's report interval as its last hello or set_interval said, in seconds."""
        self._pending: dict[int, float] = {}
        """set_interval commands in flight, by handle: the device may already use their value."""
        self._round_trip = round_trip(scenario.link)
        self._cut_until = math.inf if self._cuts(scenario.link) else -math.inf
        self._quiet_until = -math.inf
        """The end of the injected outage in force (inf: until a stop step)."""
        self._started = False
        self._booted_at = 0.0
        self.last_sample: float | None = None
        self.silences: list[Silence] = []
        self.others: list[OtherDevice] = []
        self._fw: str | None = None
        """The firmware of the run's first hello: the device under test."""
        self._other_fw: str | None = None
        """The other firmware last reported, so a device is reported once, not at each hello."""
        self._boot: int | None = None
        """The newest boot the host has seen of the device."""
        self._replugged_at: float | None = None
        """A replug whose device has not shown yet who it is."""
        self._boot_before_replug: int | None = None
        self._done = False

    @staticmethod
    def _cuts(faults: LinkFaults) -> bool:
        """Faults that let nothing through one way cut the link as an outage does."""
        return _passes_nothing(faults.to_host) or _passes_nothing(faults.to_device)

    # --- what the run tells it -------------------------------------------------------------

    def started(self, t: float) -> None:
        """The device's stream is open: from now it is expected to report."""
        self._started = True
        self._booted_at = t

    def sample(self, t: float, boot: int) -> list[Notice]:
        self.last_sample = t
        self._saw_boot(boot)
        if self._replugged_at is not None and boot == self._boot_before_replug:
            self._replugged_at = None  # the same boot goes on: the same device
        silence = self.silent
        if silence is None:
            return []
        silence.until = t
        return [Reporting(t, silence.at, silence.last_sample)]

    def hello(self, t: float, fw: str, boot: int, interval_ms: int) -> list[Notice]:
        self.interval = interval_ms / 1000
        notices: list[Notice] = []
        if self._fw is None:
            self._fw = fw
        elif fw != self._fw and fw != self._other_fw:
            notices.append(self._other(t, f"firmware {fw}, the run began with {self._fw}"))
        if fw == self._fw:
            self._other_fw = None
        else:
            self._other_fw = fw
        if self._replugged_at is not None:
            self._replugged_at = None
            before = self._boot_before_replug
            if before is not None and boot != before and not seqnum.boot_is_newer(boot, before):
                notices.append(
                    self._other(t, f"its boot counter {boot} is behind the device's {before}")
                )
        self._saw_boot(boot)
        return notices

    def _saw_boot(self, boot: int) -> None:
        if self._boot is None or seqnum.boot_is_newer(boot, self._boot):
            self._boot = boot

    def command_sent(self, handle: int, name: str, args: dict[str, Any]) -> None:
        if name == "set_interval":
            self._pending[handle] = args[f.VALUE] / 1000

    def command_done(self, handle: int) -> None:
        value = self._pending.pop(handle, None)
        if value is not None:
            self.interval = value

    def command_failed(self, handle: int) -> None:
        self._pending.pop(handle, None)

    def reset(self, t: float) -> None:
        """A reset step: the device boots again, at the default interval until its hello."""
        self._booted_at = max(self._booted_at, t)
        self.interval = max(self.interval, DEFAULT_INTERVAL)

    def outage(self, t: float, duration: float | None) -> None:
        """An outage step: the link is cut for `duration` seconds (None: until a stop)."""
        self._quiet_until = math.inf if duration is None else t + duration

    def outage_stopped(self, t: float) -> None:
        self._quiet_until = min(self._quiet_until, t)

    def faults(self, t: float, faults: LinkFaults) -> None:
        """The link's faults changed (a link step, or the clean link of the drain)."""
        self._round_trip = round_trip(faults)
        if self._cuts(faults):
            self._cut_until = math.inf
        elif self._cut_until > t:
            self._cut_until = t

    def replugged(self, t: float) -> None:
        self._booted_at = max(self._booted_at, t)
        self.interval = max(self.interval, DEFAULT_INTERVAL)
        self._replugged_at = t
        self._boot_before_replug = self._boot

    def end(self) -> None:
        """The run is over: nothing more is declared."""
        self._done = True

    # --- what it concludes -----------------------------------------------------------------

    @property
    def silent(self) -> Silence | None:
        """The silence going on, if the device is silent now."""
        if self.silences and self.silences[-1].until is None:
            return self.silences[-1]
        return None

    def allowance(self) -> float:
        """Seconds without a sample that make a device that should report silent."""
        interval = max(self.interval, *self._pending.values(), 0.0)
        return REPORTS * interval + RECOVERY + self._round_trip

    def due(self) -> float:
        """The scenario time `check` must next be called at (inf: nothing is due)."""
        replug = math.inf if self._replugged_at is None else self._replugged_at + REPLUG_HELLO
        return min(self._silence_due(), replug)

    def _silence_due(self) -> float:
        if not self._started or self._done or self.silent is not None:
            return math.inf
        allowance = self.allowance()
        heard = max(
            -math.inf if self.last_sample is None else self.last_sample,
            self._quiet_until,
            self._cut_until,
        )
        booted = self._booted_at
        while True:
            due = max(heard + allowance, booted + allowance + DEFAULT_INTERVAL)
            if math.isinf(due):
                return due
            up = self._last_power_up(due)
            if up is not None and up > booted:
                booted = up  # the rail came back since: a new boot's grace
                continue
            if not self._powered(due):
                up = self._next_power_up(due)
                if up is None:
                    return math.inf
                booted = up
                continue
            return due

    def _powered(self, t: float) -> bool:
        crossed = bisect.bisect_right(self._edges, t)
        return self._powered_at_0 == (crossed % 2 == 0)

    def _is_power_up(self, i: int) -> bool:
        return self._powered_at_0 == (i % 2 == 1)

    def _last_power_up(self, t: float) -> float | None:
        i = bisect.bisect_right(self._edges, t) - 1
        while i >= 0 and not self._is_power_up(i):
            i -= 1
        return self._edges[i] if i >= 0 else None

    def _next_power_up(self, t: float) -> float | None:
        i = bisect.bisect_right(self._edges, t)
        while i < len(self._edges) and not self._is_power_up(i):
            i += 1
        return self._edges[i] if i < len(self._edges) else None

    def check(self, t: float) -> list[Notice]:
        """What has become true by scenario time t."""
        notices: list[Notice] = []
        if t + EDGE >= self._silence_due():
            self.silences.append(Silence(t, self.last_sample))
            notices.append(Silent(t, self.last_sample, self.allowance()))
        if self._replugged_at is not None and t + EDGE >= self._replugged_at + REPLUG_HELLO:
            self._replugged_at = None
            notices.append(self._other(t, f"no hello within {REPLUG_HELLO:g} s of the replug"))
        return notices

    def _other(self, t: float, detail: str) -> OtherDevice:
        other = OtherDevice(t, detail)
        self.others.append(other)
        return other

    def outcome(self) -> Outcome:
        """The check's verdict: every silence and other device fails it."""
        problems = [
            f"silent from {s.at:.1f} s ({_last(s.last_sample)})"
            + (f" until {s.until:.1f} s" if s.until is not None else ", to the end")
            for s in self.silences
        ]
        problems += [f"a different device at {o.at:.1f} s: {o.detail}" for o in self.others]
        if not problems:
            return Outcome(PASS, None, "")
        return Outcome(FAIL, len(problems), "; ".join(problems))


def _last(t: float | None) -> str:
    return "no sample before" if t is None else f"last sample at {t:.1f} s"
