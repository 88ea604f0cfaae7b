"""Every frame vector in tests/vectors/ decodes (or fails) exactly as docs/protocol.md says."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from harness.link import commands
from harness.link.device import DeviceLink
from harness.link.frame import Broken, FrameError, LineSplitter, crc16
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
from tests.conftest import load_vectors

FRAMES = load_vectors("frames.json")
COMMANDS = load_vectors("commands.json")


def _line(vector: dict[str, Any]) -> bytes:
    if "line_hex" in vector:
        return bytes.fromhex(vector["line_hex"])
    return vector["line"].encode("ascii")


def _message(kind: str, value: dict[str, Any]) -> Message:
    match kind:
        case "sample":
            return Sample(**value)
        case "hello":
            v = dict(value)
            return Hello(last_cmd=v.pop("cmd"), **v)
        case "reply":
            return Reply(**value)
        case "log":
            return DeviceLog(**value)
        case "ack":
            return Ack(**value)
        case "nack":
            return Nack(seqs=tuple(value["seqs"]), boot=value["boot"])
        case "command":
            return Command(**value)
    raise AssertionError(kind)


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


@pytest.mark.parametrize("vector", FRAMES["crc"], ids=lambda v: repr(v["data"])[:20])
def test_crc_check_values(vector: dict[str, str]) -> None:
    assert f"{crc16(vector['data'].encode()):04X}" == vector["crc"]


@pytest.mark.parametrize("vector", FRAMES["valid"], ids=_ids(FRAMES["valid"]))
def test_valid_frame_decodes_to_its_value(vector: dict[str, Any]) -> None:
    direction = Direction(vector["dir"])
    expected = _message(vector["kind"], vector["value"])
    decoded = decode(_line(vector) + b"\n", direction)
    assert decoded == expected
    if vector["canonical"]:
        assert encode(expected) == _line(vector) + b"\n"


@pytest.mark.parametrize("vector", FRAMES["invalid"], ids=_ids(FRAMES["invalid"]))
def test_invalid_frame_gives_its_error_class(vector: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as info:
        decode(_line(vector) + b"\n", Direction(vector["dir"]))
    assert info.value.kind == vector["error"]


@pytest.mark.parametrize("vector", FRAMES["invalid"], ids=_ids(FRAMES["invalid"]))
def test_line_splitter_and_decoder_agree_on_too_long(vector: dict[str, Any]) -> None:
    lines = LineSplitter().feed(_line(vector) + b"\n", 0.0)
    assert len(lines) == 1
    assert (lines[0] == Broken("too_long")) == (vector["error"] == "too_long")


def test_longest_valid_line_is_exactly_the_limit() -> None:
    longest = max(len(_line(v)) + 1 for v in FRAMES["valid"])
    assert longest == FRAMES["max_line"]


@pytest.mark.parametrize("case", COMMANDS["cases"], ids=_ids(COMMANDS["cases"]))
def test_command_vector_on_a_fresh_device(case: dict[str, Any]) -> None:
    device = DeviceLink(now=0.0, boot=0)
    device.data_to_send()  # the boot hello
    device.feed(case["line"].encode() + b"\n", 0.0)
    (reply,) = device.data_to_send().splitlines()
    answer = decode(reply, Direction.DEVICE_TO_HOST)
    assert isinstance(answer, Reply)
    assert answer.seq == 1
    assert (answer.err or "ok") == case["reply"]
    assert asdict(device.settings) == case["settings"]


def test_command_table_defaults_match_the_vectors() -> None:
    assert asdict(commands.Settings()) == COMMANDS["defaults"]
