"""CppDevice: the firmware's C++ device core (firmware/lib/powerlink) behind DeviceLink's interface.

The core runs in firmware/build/host/powerlink-device, a host program that `make firmware-host`
builds and that speaks a line protocol on stdin/stdout (documented at the top of
firmware/host/powerlink_device.cpp). CppDevice drives it in lockstep with the simulation's time,
so tests/linksim.py can put it where a DeviceLink goes: same methods, same events.

Time: the core counts whole milliseconds since its boot; `now` (seconds) becomes
floor((now - boot time) * 1000), as DeviceLink.ms() does.
"""

from __future__ import annotations

import functools
import math
import subprocess
import weakref
from pathlib import Path
from typing import IO

from harness.link import (
    Command,
    CommandExecuted,
    CorruptFrame,
    DeviceEvent,
    DeviceTiming,
    Readings,
    Reply,
    Resent,
    Sample,
    SampleClosed,
    Settings,
)
from harness.link import fields as f
from harness.link.messages import Direction, decode

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "firmware" / "build" / "host" / "powerlink-device"


@functools.cache
def build() -> Path:
    """Build (or bring up to date) the host device program, once per test session."""
    subprocess.run(["make", "-s", "-C", str(ROOT), "firmware-host"], check=True)
    return PROGRAM


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        try:
            proc.stdin.write("quit\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None and not stream.closed:
            stream.close()


def _milli(value: float) -> int:
    """Volts to mV, watts to mW: the core's units."""
    return round(value * 1000)


def _tenth_ma(amps: float) -> int:
    """Amps to the core's current unit, 0.1 mA."""
    return round(amps * 10_000)


class CppDevice:
    """A DeviceLink look-alike whose every decision is made by the C++ core."""

    def __init__(
        self,
        *,
        now: float,
        boot: int = 0,
        settings: Settings = Settings(),
        timing: DeviceTiming = DeviceTiming(),
        first_seq: int = 0,
        win: int = f.WINDOW,
    ) -> None:
        if timing != DeviceTiming() or win != f.WINDOW:
            raise ValueError("the C++ core has the protocol's timing and window built in")
        self.boot = boot
        self._t0 = now
        self._last_ms: int | None = None
        self._pending = True
        self._deadline_ms: int | None = None
        self.corrupt = 0
        self._proc = subprocess.Popen(
            [str(build())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._finalizer = weakref.finalize(self, _stop, self._proc)
        s = settings
        self._call(
            f"begin {boot} {first_seq} {s.interval_ms} {_milli(s.uv)} {_tenth_ma(s.oc)} "
            f"{_milli(s.op)} {s.avg}",
            now,
        )

    # --- DeviceLink's interface --------------------------------------------------------------

    def ms(self, now: float) -> int:
        """Device time: whole milliseconds since boot."""
        return math.floor((now - self._t0) * 1000 + 1e-6)

    def add_readings(self, now: float, readings: Readings) -> list[DeviceEvent]:
        r = readings
        fault = r.fault or "-"
        return self._call(
            f"add {self.ms(now)} {r.n} {_milli(r.v)} {_tenth_ma(r.a)} {_milli(r.w)} {_milli(r.vmin)} "
            f"{_milli(r.vmax)} {_tenth_ma(r.amax)} {_milli(r.wmax)} {fault}",
            now,
        )

    def feed(self, data: bytes, now: float) -> list[DeviceEvent]:
        if not data:
            return self.poll(now)
        return self._call(f"feed {self.ms(now)} {data.hex()}", now)

    def poll(self, now: float) -> list[DeviceEvent]:
        ms = self.ms(now)
        if ms == self._last_ms:
            return []  # the core ran its timers at this millisecond and nothing came since
        return self._call(f"tick {ms}", now)

    def data_to_send(self) -> bytes:
        if not self._pending:
            return b""
        (out,) = self._request("read")
        word, text = out.split()
        assert word == "out", out
        return b"" if text == "-" else bytes.fromhex(text)

    def next_deadline(self) -> float | None:
        if self._deadline_ms is None:
            return None
        return self._t0 + self._deadline_ms / 1000

    @property
    def settings(self) -> Settings:
        (line,) = self._request("settings")
        _, interval, uv, oc, op, avg = line.split()
        return Settings(
            interval_ms=int(interval),
            uv=int(uv) / 1000,
            oc=int(oc) / 10_000,
            op=int(op) / 1000,
            avg=int(avg),
        )

    def limits(self) -> dict[str, str]:
        """The protocol constants compiled into the core."""
        (line,) = self._request("limits")
        return dict(word.split("=", 1) for word in line.split()[1:])

    def close(self) -> None:
        self._finalizer()

    # --- the driver protocol -----------------------------------------------------------------

    def _request(self, line: str) -> list[str]:
        """Send one request; return the lines before its `end` line, and note what that says."""
        stdin, stdout = self._streams()
        stdin.write(line + "\n")
        stdin.flush()
        lines = []
        while True:
            answer = stdout.readline()
            if not answer:
                raise RuntimeError(f"powerlink-device stopped (exit {self._proc.wait()})")
            answer = answer.rstrip("\n")
            if answer.startswith("end "):
                _, deadline, pending = answer.split()
                self._deadline_ms = None if deadline == "-" else int(deadline)
                self._pending = pending == "1"
                return lines
            if answer.startswith("error "):
                raise RuntimeError(f"powerlink-device refused {line!r}")
            lines.append(answer)

    def _streams(self) -> tuple[IO[str], IO[str]]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        return self._proc.stdin, self._proc.stdout

    def _call(self, line: str, now: float) -> list[DeviceEvent]:
        self._last_ms = self.ms(now)
        return [self._event(words.split(), now) for words in self._request(line)]

    def _event(self, words: list[str], now: float) -> DeviceEvent:
        match words:
            case ["closed", _, frame]:
                sample = decode(bytes.fromhex(frame), Direction.DEVICE_TO_HOST)
                assert isinstance(sample, Sample)
                return SampleClosed(sample, now)
            case ["executed", seq, result, frame]:
                command = decode(bytes.fromhex(frame), Direction.HOST_TO_DEVICE)
                assert isinstance(command, Command) and command.seq == int(seq)
                return CommandExecuted(
                    command, Reply(int(seq), None if result == "ok" else result), now
                )
            case ["resent", cause, *seqs]:
                return Resent(tuple(int(s) for s in seqs), cause, now)
            case ["corrupt", kind, frame]:
                self.corrupt += 1
                line = b"" if frame == "-" else bytes.fromhex(frame) + b"\n"
                return CorruptFrame(kind, line, now)
        raise AssertionError(f"unexpected line from powerlink-device: {words}")
