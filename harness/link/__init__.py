"""Protocol v1 link core, sans-IO: it imports no I/O library and reads no clock.

Both ends take received bytes together with the current time (seconds, any monotonic origin)
and give back events, the bytes to send and the time they next need to be called::

    from harness.link import DeviceLink, HostLink, Readings, SampleReceived

    host, dev = HostLink(now=0.0), DeviceLink(now=0.0, boot=1)
    t = 0.0
    while t < 5.0:
        dev.add_readings(t, Readings.one(v=5.0, a=0.25, w=1.25))
        dev.poll(t)
        for ev in host.feed(dev.data_to_send(), t):      # device -> host
            if isinstance(ev, SampleReceived):
                print(ev.sample.seq, ev.sample.v)
        dev.feed(host.data_to_send(), t)                  # host -> device (ACKs, commands)
        t = min(x for x in (host.next_deadline(), dev.next_deadline(), t + 0.1) if x)

`host.send_command("set_interval", {"value": 500}, now=t)` queues a command; its outcome comes
back as CommandDone or CommandFailed carrying the returned handle. docs/protocol.md is the
normative description of the frames and rules implemented here.
"""

from harness.link.commands import COMMANDS, Settings
from harness.link.device import DeviceLink, DeviceTiming, Readings
from harness.link.events import (
    CommandDone,
    CommandExecuted,
    CommandFailed,
    CorruptFrame,
    DeviceEvent,
    DeviceHello,
    DeviceReset,
    DuplicateDropped,
    GapSeen,
    HostEvent,
    HostStats,
    LogLine,
    Resent,
    RetransmissionSeen,
    SampleClosed,
    SampleReceived,
)
from harness.link.frame import FrameError
from harness.link.host import HostLink, HostTiming
from harness.link.messages import (
    Ack,
    Command,
    DeviceLog,
    Direction,
    Hello,
    Message,
    Nack,
    Reply,
    Sample,
    decode,
    encode,
)

__all__ = [
    "COMMANDS",
    "Ack",
    "Command",
    "CommandDone",
    "CommandExecuted",
    "CommandFailed",
    "CorruptFrame",
    "DeviceEvent",
    "DeviceHello",
    "DeviceLink",
    "DeviceLog",
    "DeviceReset",
    "DeviceTiming",
    "Direction",
    "DuplicateDropped",
    "FrameError",
    "GapSeen",
    "Hello",
    "HostEvent",
    "HostLink",
    "HostStats",
    "HostTiming",
    "LogLine",
    "Message",
    "Nack",
    "Readings",
    "Reply",
    "Resent",
    "RetransmissionSeen",
    "Sample",
    "SampleClosed",
    "SampleReceived",
    "Settings",
    "decode",
    "encode",
]
