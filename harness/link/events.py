"""What the link state machines report. Times are the `now` the caller passed in, in seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from harness.link.messages import Command, Hello, Reply, Sample

# --- host side ----------------------------------------------------------------------------


class SampleReceived(NamedTuple):
    """A sample delivered to the application: in seq order, once. (A named tuple: one is made
    per frame, see `Sample`.)"""

    sample: Sample
    at: float


@dataclass(frozen=True, slots=True)
class DeviceHello:
    hello: Hello
    at: float


@dataclass(frozen=True, slots=True)
class DeviceReset:
    """The device booted again. `lost` counts the old boot's samples known to exist (their seqs
    were seen or skipped) that never arrived; samples still unsent in the device are unknown.
    `counter_advanced` is False for a restart whose boot counter stayed or went back (an erased
    EEPROM, a swapped board): then `new_boot` may equal `old_boot`."""

    old_boot: int
    new_boot: int
    lost: int
    at: float
    counter_advanced: bool = True


@dataclass(frozen=True, slots=True)
class CommandDone:
    handle: int
    command: Command
    sent_at: float
    at: float


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """reason: a device error code, "timeout" (retries used up) or "reset" (the device rebooted
    while it was outstanding; whether the old boot executed it is unknown)."""

    handle: int
    command: Command
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class CorruptFrame:
    kind: str
    line: bytes
    at: float


@dataclass(frozen=True, slots=True)
class GapSeen:
    boot: int
    seqs: tuple[int, ...]
    at: float


@dataclass(frozen=True, slots=True)
class RetransmissionSeen:
    """A sample that filled a gap arrived: a resend the host asked for or the device timed out."""

    boot: int
    seq: int
    at: float


@dataclass(frozen=True, slots=True)
class DuplicateDropped:
    boot: int
    seq: int
    at: float


@dataclass(frozen=True, slots=True)
class LogLine:
    text: str
    at: float


HostEvent = (
    SampleReceived
    | DeviceHello
    | DeviceReset
    | CommandDone
    | CommandFailed
    | CorruptFrame
    | GapSeen
    | RetransmissionSeen
    | DuplicateDropped
    | LogLine
)

# --- device side --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandExecuted:
    """A command took effect (or was refused with `reply.err`): once per command seq."""

    command: Command
    reply: Reply
    at: float


@dataclass(frozen=True, slots=True)
class SampleClosed:
    """The device closed a sample and put it in its window."""

    sample: Sample
    at: float


@dataclass(frozen=True, slots=True)
class Resent:
    """Samples queued again: cause is "nack" or "timeout"."""

    seqs: tuple[int, ...]
    cause: str
    at: float


DeviceEvent = CommandExecuted | SampleClosed | Resent | CorruptFrame

# --- counters -----------------------------------------------------------------------------


@dataclass(slots=True)
class HostStats:
    """Running totals a HostLink keeps."""

    frames_in: int = 0
    bytes_in: int = 0
    samples: int = 0
    corrupt: int = 0
    gaps: int = 0
    nacks_sent: int = 0
    acks_sent: int = 0
    retransmissions: int = 0
    duplicates: int = 0
    stale: int = 0
    out_of_window: int = 0
    resets: int = 0
    lost: int = 0
    commands_sent: int = 0
    command_resends: int = 0
    commands_done: int = 0
    commands_failed: int = 0
    log_lines: int = 0
    corrupt_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def resent(self) -> int:
        """Retransmissions as the record, the console and the viewer count them: samples that
        came again (gap fills and duplicates dropped) plus command resends."""
        return self.retransmissions + self.duplicates + self.command_resends
