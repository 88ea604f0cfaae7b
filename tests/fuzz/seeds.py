"""The fuzzers' seed corpus, made from tests/vectors/ and from a short session of the two Python
link ends, so nothing in the corpus is a second copy of a vector to keep in step.

    python -m tests.fuzz.seeds tests/fuzz/corpus

writes `host/` (what a device sends: the input of tests/fuzz/fuzz_host.py) and `device/` (what
a host sends: the input of tests/fuzz/fuzz_device.cpp). Each input is a 4-byte header (see
tests/fuzz/host_target.py) and a byte stream; files are named by their content's SHA-1, as
libFuzzer names what it adds to a corpus.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.link import DeviceLink, HostLink, Readings, Settings

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
HEADERS = (b"\x00\x00\x00\x00", b"seed", b"\xff\x01\x7f\x80")
"""A few starts for the choices the header makes (read sizes, times, settings); the last one
has the targets repair CRCs."""


def _line(vector: dict[str, Any]) -> bytes:
    raw = bytes.fromhex(vector["line_hex"]) if "line_hex" in vector else vector["line"].encode()
    return raw if raw.endswith(b"\n") else raw + b"\n"


def vector_lines() -> dict[str, list[bytes]]:
    """Every line of the vectors, by the end that receives it."""
    frames = json.loads((VECTORS / "frames.json").read_text())
    commands = json.loads((VECTORS / "commands.json").read_text())
    lines: dict[str, list[bytes]] = {"host": [], "device": []}
    for vector in frames["valid"] + frames["invalid"]:
        lines["device" if vector.get("dir") == "h2d" else "host"].append(_line(vector))
    lines["device"] += [_line(case) for case in commands["cases"]]
    return lines


def session(restart_at: float | None = None) -> tuple[bytes, bytes]:
    """Both directions of a clean exchange: a boot, samples every 50 ms, commands, and, if
    `restart_at` is given, a restart keeping the boot number. Returns (to host, to device)."""
    host = HostLink(now=0.0)
    dev = DeviceLink(now=0.0, boot=7, settings=Settings(interval_ms=50))
    to_host, to_device = bytearray(), bytearray()
    reading = Readings.one(5.0, 0.25, 1.25)
    t = 0.0
    for step in range(150):
        t = step * 0.01
        if restart_at is not None and abs(t - restart_at) < 1e-9:
            dev = DeviceLink(now=t, boot=7, settings=Settings(interval_ms=50))
        if step == 20:
            host.send_command("set_threshold", {"uv": 4.5}, now=t)
        if step == 60:
            host.send_command("set_avg", {"value": 4}, now=t)
        dev.add_readings(t, reading)
        up = dev.data_to_send()
        to_host += up
        host.feed(up, t)
        host.poll(t)
        down = host.data_to_send()
        to_device += down
        dev.feed(down, t)
    return bytes(to_host), bytes(to_device)


def inputs() -> Iterator[tuple[str, bytes]]:
    lines = vector_lines()
    for target, found in lines.items():
        for line in found:
            yield target, HEADERS[0] + line
            yield target, HEADERS[-1] + line
    plain_up, plain_down = session()
    restart_up, restart_down = session(restart_at=0.8)
    for header in HEADERS:
        yield "host", header + plain_up
        yield "host", header + restart_up
        yield "host", header + plain_up.replace(b"\n", b"\r\n")
        yield "host", header + b"".join(lines["host"])
        yield "device", header + plain_down
        yield "device", header + restart_down
        yield "device", header + b"".join(lines["device"])


def write(out: Path) -> int:
    """Write the corpus under `out`; returns how many inputs it holds."""
    count = 0
    for target, data in inputs():
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / hashlib.sha1(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
            count += 1
    return count


if __name__ == "__main__":
    target_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus")
    print(f"fuzz seeds: {write(target_dir)} new inputs in {target_dir}")
