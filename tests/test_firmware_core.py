"""The firmware's C++ device core against the Python DeviceLink, line for line.

Both get the same lines at the same times; they must answer with the same bytes and end with the
same settings. docs/protocol.md is normative for both, so any difference is a bug in one of them.
The property tests of the whole link run against the C++ core in tests/test_link_properties.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.link import DeviceLink, DeviceTiming, Readings, Settings
from harness.link import fields as f
from harness.link.frame import LINE_IDLE, Broken, LineSplitter, wrap
from tests.cpp_device import ROOT, CppDevice

READING = Readings(5, 5.0, 0.25, 1.25, 4.9, 5.1, 0.3, 1.4)


@pytest.fixture
def cpp() -> Iterator[CppDevice]:
    device = CppDevice(now=0.0, boot=1, settings=Settings(interval_ms=100))
    yield device
    device.close()


def test_the_core_has_the_protocols_constants(cpp: CppDevice) -> None:
    timing = DeviceTiming()
    assert cpp.limits() == {
        "fw": f.FIRMWARE_VERSION,
        "max_line": str(f.MAX_LINE),
        "window": str(f.WINDOW),
        "max_nack": str(f.MAX_NACK_SEQS),
        "interval_min": str(f.INTERVAL_MS[0]),
        "interval_max": str(f.INTERVAL_MS[1]),
        "interval_default": str(f.DEFAULT_INTERVAL_MS),
        "avg_default": str(f.DEFAULT_AVG),
        "rto_ms": str(round(timing.rto * 1000)),
        "rto_max_ms": str(round(timing.rto_max * 1000)),
        "line_idle_ms": str(round(LINE_IDLE * 1000)),
    }
    assert cpp.settings == Settings(interval_ms=100)


# --- lines a host might send, well and badly formed ---------------------------------------------

ARGUMENTS = {
    "ping": (),
    "hello": (),
    "set_interval": ("value",),
    "set_avg": ("value",),
    "set_threshold": ("uv", "oc", "op"),
    "reboot": ("value",),
    "": (),
}
"""Commands, and the arguments each is usually given."""

EDGE_NUMBERS = (
    *["0", "-0", "1", "2", "3", "4", "9", "10", "11", "127", "128", "129", "256", "59999"],
    *["60000", "60001", "-1", "4294967295", "4294967296", "99999999999999999999", "3.0"],
    *["1e3", "128.0", "32.768", "32.7680", "32.76800001", "32.7679", "32.769", "33", "40"],
    *["1100", "1100.000", "1100.0001", "11e2", "0.0001", "0.00015", "0.00009", "-0.0"],
    *["-0.0001", "1e-9", "4.5e0", "45E-1", "0e0", "0.5E+1", "1e400", "-1e400", "1E-400"],
)
"""Numbers at the edges of the ranges and of the wire's steps, in the forms JSON allows."""

ODD_VALUES = (
    *["007", "01.5", "1.", ".5", "1e", "1e+", "+1", "-", "--1", "NaN", "Infinity"],
    *["-Infinity", "tru", "nul", "true", "false", "null", "[]", "[1,2]", "[-1]", "[1,]"],
    *["[,1]", "[1.5]", "[true]", "[[1]]", "{}", '{"a":1}', '{"a":1,"a":2}', '""', '"5"'],
    *['"a b"', '"a*b"', '"\\u0041"', "1 2", '"unclosed'],
)
"""Values of every JSON type, and text that is not JSON."""


@st.composite
def decimals(draw: st.DrawFn) -> str:
    """A JSON number as text: any form JSON allows, at most 9 significant digits (a float in
    Python then holds it exactly enough that truncating it to 1 mV or 0.1 mA is exact)."""
    sign = draw(st.sampled_from(["", "-"]))
    digits = draw(st.integers(0, 10**9 - 1))
    text = str(digits)
    point = draw(st.integers(0, len(text)))
    if point and draw(st.booleans()):
        text = text[: len(text) - point].lstrip("0").rjust(1, "0") + "." + text[len(text) - point :]
    exponent = draw(st.none() | st.integers(-12, 12))
    if exponent is not None:
        plus = draw(st.sampled_from(["", "+"])) if exponent >= 0 else ""
        text += draw(st.sampled_from(["e", "E"])) + plus + str(exponent)
    return sign + text


edge_numbers = st.sampled_from(EDGE_NUMBERS)
json_values = st.one_of(edge_numbers, edge_numbers, decimals(), st.sampled_from(ODD_VALUES))


@st.composite
def host_lines(draw: st.DrawFn) -> bytes:
    """A line a host might send: mostly commands with their own arguments, ACKs and NACKs of
    the device's samples, and every way of getting one wrong."""
    kind = draw(st.sampled_from(["command", "command", "command", "ack", "nack", "noise"]))
    seq = draw(st.integers(0, 12) | st.sampled_from([2**32 - 1, 2**32, -1, "1.0", '"1"']))
    boot = draw(st.sampled_from([None, 1, 1, 1, 0, 65536, "null"]))
    pairs: list[tuple[str, str]] = []
    if kind == "command":
        name = draw(st.sampled_from(sorted(ARGUMENTS)))
        keys = list(ARGUMENTS[name])
        if name == "set_threshold":
            keys = draw(st.lists(st.sampled_from(keys), max_size=3, unique=True))
        keys += draw(st.lists(st.sampled_from(["x", "value", "uv", "ack", "nack"]), max_size=1))
        pairs.append(("cmd", draw(st.sampled_from([f'"{name}"', f'"{name}"', "5", "null"]))))
        pairs += [(key, draw(json_values)) for key in keys]
        pairs.append(("seq", str(seq)))
    elif kind == "ack":
        pairs.append(("ack", str(seq)))
    elif kind == "nack":
        seqs = draw(st.lists(st.integers(-1, 12), max_size=5))
        pairs.append(("nack", "[" + ",".join(map(str, seqs)) + "]"))
    else:
        pairs.append((draw(st.sampled_from(["x", "value", "hello"])), draw(json_values)))
    if boot is not None:
        pairs.append(("boot", str(boot)))
    # Python's json module takes keys in any order and whitespace around the tokens.
    order = draw(st.permutations(pairs))
    space = draw(st.sampled_from(["", " "]))
    body = "{" + ",".join(f'{space}"{k}"{space}:{space}{v}' for k, v in order) + "}"
    shape = draw(st.sampled_from(["object"] * 6 + ["unclosed", "comma", "after", "array"]))
    if shape == "unclosed":
        body = body[:-1]
    elif shape == "comma":
        body = body[:-1] + ",}"
    elif shape == "after":
        body += draw(st.sampled_from([" ", "x", "{}", "]"]))
    elif shape == "array":
        body = f"[{body}]"
    line = wrap(body.encode()) if len(body) < f.MAX_LINE - 6 else body.encode() + b"*0000\n"
    mangle = draw(st.sampled_from(["none"] * 6 + ["flip", "cut", "crlf", "lower"]))
    if mangle == "flip":
        at = draw(st.integers(0, len(line) - 2))
        line = line[:at] + bytes([line[at] ^ (1 << draw(st.integers(0, 7)))]) + line[at + 1 :]
    elif mangle == "cut":
        at = draw(st.integers(0, len(line) - 2))
        line = line[:at] + b"\n"
    elif mangle == "crlf":
        line = line[:-1] + b"\r\n"
    elif mangle == "lower":
        line = line[:-5] + line[-5:].lower()
    return line


def test_every_edge_value_of_every_argument_is_judged_as_devicelink_judges_it() -> None:
    """Each command with each argument key set to each edge value, one after the other."""
    python = DeviceLink(now=0.0)
    cpp = CppDevice(now=0.0)
    try:
        assert cpp.data_to_send() == python.data_to_send()
        seq = 0
        for name in sorted(ARGUMENTS):
            for key in ("value", "uv", "oc", "op", "x"):
                for value in (*EDGE_NUMBERS, *ODD_VALUES):
                    seq += 1
                    line = wrap(f'{{"cmd":"{name}","{key}":{value},"seq":{seq}}}'.encode())
                    python.feed(line, 1.0)
                    cpp.feed(line, 1.0)
                    assert cpp.data_to_send() == python.data_to_send(), line
                    assert cpp.settings == python.settings, line
    finally:
        cpp.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(host_lines(), min_size=1, max_size=12))
def test_the_core_answers_every_line_as_devicelink_does(lines: list[bytes]) -> None:
    """Replies, resent samples and settings agree after every line, with samples to ACK and NACK
    (a reading every 50 ms, a sample every 100 ms)."""
    python = DeviceLink(now=0.0, boot=1, settings=Settings(interval_ms=100))
    cpp = CppDevice(now=0.0, boot=1, settings=Settings(interval_ms=100))
    try:
        assert cpp.data_to_send() == python.data_to_send()  # the boot hello
        for i, line in enumerate(lines):
            t = 0.05 * (i + 1)
            python.add_readings(t, READING)
            cpp.add_readings(t, READING)
            assert cpp.data_to_send() == python.data_to_send()
            python.feed(line, t)
            cpp.feed(line, t)
            assert cpp.data_to_send() == python.data_to_send(), line
            assert cpp.settings == python.settings, line
    finally:
        cpp.close()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=400), max_size=20))
def test_arbitrary_bytes_are_answered_as_devicelink_does(chunks: list[bytes]) -> None:
    """Any bytes: the core counts each bad line once and never fails (it runs with address
    and undefined-behaviour checks). Its reply queue holds 4: one feed of many bad lines gets
    the first 4 answers; the host resends its command anyway."""
    python = DeviceLink(now=0.0)
    cpp = CppDevice(now=0.0)
    try:
        assert cpp.data_to_send() == python.data_to_send()
        stream = b"".join(chunks) + b"\n"
        for i, chunk in enumerate([*chunks, b"\n"]):
            python.feed(chunk, i * 0.001)
            cpp.feed(chunk, i * 0.001)
            expected = python.data_to_send().splitlines(keepends=True)[:4]
            assert cpp.data_to_send().splitlines(keepends=True) == expected
        lines = [
            x for x in LineSplitter().feed(stream, 0.0) if isinstance(x, Broken) or x.strip(b"\r\n")
        ]
        assert cpp.corrupt == python.corrupt <= len(lines)
    finally:
        cpp.close()


# --- the doctest host tests (firmware/test/test_native), run from elsewhere ---------------------

HOST_TESTS = ROOT / "firmware" / "build" / "host" / "powerlink-tests"


@pytest.fixture(scope="module")
def host_tests() -> Path:
    """The host test program `make firmware-test` runs, built (or brought up to date) once."""
    subprocess.run(["make", "-s", "-C", str(ROOT), str(HOST_TESTS.relative_to(ROOT))], check=True)
    return HOST_TESTS


def run_host_tests(
    program: Path, cwd: Path, vectors: Path | None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "POWERHIL_VECTORS_DIR"}
    if vectors is not None:
        env["POWERHIL_VECTORS_DIR"] = str(vectors)
    return subprocess.run(
        [str(program)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def doctest_totals(stdout: str) -> tuple[int, int]:
    """(passed, failed) test cases from doctest's summary: the program ran to its end."""
    found = re.search(r"test cases:\s*\d+ \|\s*(\d+) passed \|\s*(\d+) failed", stdout)
    assert found, stdout[-2000:]
    return int(found[1]), int(found[2])


def test_the_host_tests_find_the_vectors_from_another_directory(
    host_tests: Path, tmp_path: Path
) -> None:
    """Run outside the checkout, the program still reads tests/vectors (the build gives it the
    path) and every test passes."""
    result = run_host_tests(host_tests, tmp_path, None)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed, failed = doctest_totals(result.stdout)
    assert failed == 0 and passed > 0


def test_the_host_tests_name_the_vectors_path_they_cannot_read(
    host_tests: Path, tmp_path: Path
) -> None:
    """Vectors missing: the tests that read them fail, each naming the path tried and the variable
    that sets it; the rest pass, and the program ends with doctest's failure status (no signal,
    no sanitizer report)."""
    missing = tmp_path / "no-vectors"
    result = run_host_tests(host_tests, tmp_path, missing)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert "Sanitizer" not in output and "runtime error" not in output
    passed, failed = doctest_totals(result.stdout)
    assert passed > 0 and failed > 0
    for name in ("frames.json", "commands.json"):
        assert f"cannot read {missing / name}" in result.stdout
    assert result.stdout.count("protocol vectors not found") == failed
    assert "set POWERHIL_VECTORS_DIR" in result.stdout
