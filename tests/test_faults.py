"""The fault injector's knobs do what netem's do, each direction on its own, and replay."""

from __future__ import annotations

from harness.faults import MAX_HOLD, FaultConfig, FaultyPipe, GilbertElliott, frame_identity
from harness.link import Sample, encode


def frame(seq: int) -> bytes:
    return encode(Sample(seq, 1, seq * 100, 100, 5.0, 0.25, 1.25, 5.0, 5.0, 0.25, 10, "ok"))


def pump(pipe: FaultyPipe, count: int, spacing: float = 0.01) -> list[bytes]:
    """Send `count` frames `spacing` apart, then drain; returns the lines that came out."""
    out = bytearray()
    for i in range(count):
        pipe.send(frame(i), i * spacing)
        out += pipe.receive(i * spacing)
    out += pipe.receive(count * spacing + 10.0)
    return out.splitlines(keepends=True)


def seqs(lines: list[bytes]) -> list[int | None]:
    return [frame_identity(line)[1] for line in lines]


def kinds(pipe: FaultyPipe) -> list[str]:
    return [e.kind for e in pipe.events]


def test_clean_pipe_passes_everything_in_order() -> None:
    pipe = FaultyPipe(FaultConfig(), 1, "to_host")
    assert seqs(pump(pipe, 100)) == list(range(100))
    assert pipe.events == []


def test_drop_loses_about_that_share_and_records_each() -> None:
    pipe = FaultyPipe(FaultConfig(drop=0.2), 2, "to_host")
    got = seqs(pump(pipe, 2000))
    dropped = [e.seq for e in pipe.events if e.kind == "drop"]
    assert 300 < len(dropped) < 500
    assert sorted(got + dropped) == list(range(2000))


def test_corrupt_flips_bits_inside_the_frame() -> None:
    pipe = FaultyPipe(FaultConfig(corrupt=1.0), 3, "to_device")
    lines = pump(pipe, 50)
    originals = [frame(i) for i in range(50)]
    assert kinds(pipe) == ["corrupt"] * 50
    out = b"".join(lines)
    assert len(out) == sum(map(len, originals))
    flips = sum(bin(a ^ b).count("1") for a, b in zip(out, b"".join(originals), strict=True))
    assert 50 <= flips <= 150


def test_duplicate_sends_a_second_copy() -> None:
    pipe = FaultyPipe(FaultConfig(duplicate=1.0), 4, "to_host")
    assert seqs(pump(pipe, 3)) == [0, 0, 1, 1, 2, 2]


def test_reorder_holds_a_frame_behind_k_later_ones() -> None:
    pipe = FaultyPipe(FaultConfig(reorder=0.1, reorder_gap=3), 5, "to_host")
    got = seqs(pump(pipe, 200))
    held = [e.seq for e in pipe.events if e.kind == "reorder"]
    assert held and sorted(got) == list(range(200))
    for s in held:
        assert s is not None
        overtook = [x for x in got[: got.index(s)] if x is not None and x > s]
        assert len(overtook) >= 3 or s > 190


def test_reordered_frame_comes_out_after_max_hold_when_nothing_follows() -> None:
    pipe = FaultyPipe(FaultConfig(reorder=1.0, reorder_gap=5), 6, "to_host")
    pipe.send(frame(0), 0.0)
    assert pipe.receive(MAX_HOLD - 0.01) == b""
    assert pipe.next_deadline() == MAX_HOLD
    assert pipe.receive(MAX_HOLD) == frame(0)


def test_delay_with_jitter_keeps_order() -> None:
    pipe = FaultyPipe(FaultConfig(delay=0.1, jitter=0.05), 7, "to_host")
    for i in range(20):
        pipe.send(frame(i), i * 0.001)
    assert pipe.receive(0.049) == b""
    assert seqs(pipe.receive(1.0).splitlines(keepends=True)) == list(range(20))


def test_outage_drops_everything_for_its_duration() -> None:
    pipe = FaultyPipe(FaultConfig(), 8, "to_host")
    pipe.start_outage(1.0, 2.0)
    pipe.send(frame(0), 1.5)
    pipe.send(frame(1), 3.5)
    assert seqs(pipe.receive(4.0).splitlines(keepends=True)) == [1]
    assert kinds(pipe) == ["outage_start", "outage_drop", "outage_end"]


def test_outage_also_cuts_frames_already_on_the_wire() -> None:
    pipe = FaultyPipe(FaultConfig(rate=960.0, reorder=0.2), 13, "to_host")  # 9600 baud
    for i in range(20):
        pipe.send(frame(i), 0.0)
    delivered_before = seqs(pipe.receive(0.5).splitlines(keepends=True))
    pipe.start_outage(0.5, 5.0)
    assert pipe.receive(10.0) == b""
    dropped = [e.seq for e in pipe.events if e.kind == "outage_drop"]
    assert sorted(delivered_before + dropped) == list(range(20))


def test_garbage_puts_random_bytes_before_a_frame() -> None:
    pipe = FaultyPipe(FaultConfig(garbage=1.0), 9, "to_host")
    out = pipe_out = b"".join(pump(pipe, 10))
    assert len(pipe_out) > sum(len(frame(i)) for i in range(10))
    assert kinds(pipe) == ["garbage"] * 10
    assert out.endswith(frame(9))


def test_rate_limit_serialises_like_a_baud_rate() -> None:
    pipe = FaultyPipe(FaultConfig(rate=11520.0), 10, "to_host")  # 115200 baud
    line = frame(0)
    for _ in range(10):
        pipe.send(line, 0.0)
    done = len(line) * 10 / 11520.0
    assert len(pipe.receive(done - 0.001)) == len(line) * 9
    assert len(pipe.receive(done)) == len(line)


def test_gilbert_elliott_loses_in_bursts() -> None:
    pipe = FaultyPipe(FaultConfig(burst=GilbertElliott(p=0.02, r=0.2)), 11, "to_host")
    got = set(seqs(pump(pipe, 5000)))
    lost = [i for i in range(5000) if i not in got]
    runs = sum(1 for i in lost if i - 1 not in lost)
    assert len(lost) > 100
    assert len(lost) / runs > 3  # mean burst 1/r = 5 frames; random loss would give ~1
    assert set(kinds(pipe)) == {"burst_drop"}


def test_same_seed_same_faults_and_another_seed_others() -> None:
    config = FaultConfig(drop=0.1, corrupt=0.05, duplicate=0.05, reorder=0.05, garbage=0.02)

    def run(seed: int) -> list[tuple[str, int | None]]:
        pipe = FaultyPipe(config, seed, "to_host")
        pump(pipe, 500)
        return [(e.kind, e.seq) for e in pipe.events]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_a_frames_fate_does_not_depend_on_what_came_before() -> None:
    """Replay survives a different interleaving: the same frame gets the same fate."""
    config = FaultConfig(drop=0.5)
    a = FaultyPipe(config, 3, "to_host")
    b = FaultyPipe(config, 3, "to_host")
    a.send(frame(1), 0.0)
    b.send(frame(99), 0.0)
    b.send(frame(1), 0.0)
    fate_a = [e.seq for e in a.events if e.kind == "drop"] == [1]
    fate_b = 1 in [e.seq for e in b.events if e.kind == "drop"]
    assert fate_a == fate_b


def test_partial_line_passes_on_after_a_pause() -> None:
    pipe = FaultyPipe(FaultConfig(drop=1.0), 12, "to_device")
    pipe.send(b"hello", 0.0)
    assert pipe.receive(0.1) == b""
    assert pipe.receive(0.3) == b"hello"


def test_only_random_faults_draw() -> None:
    assert not FaultConfig().draws
    assert not FaultConfig(delay=0.1, rate=960.0, reorder_gap=3).draws
    for knob in ("drop", "corrupt", "duplicate", "reorder", "jitter", "garbage"):
        assert FaultConfig(**{knob: 0.01}).draws, knob
    assert FaultConfig(burst=GilbertElliott(0.01, 0.3)).draws


def test_a_link_without_random_faults_keeps_no_record_and_later_faults_draw_afresh() -> None:
    """Delay and a line rate draw nothing, so the pipe keeps none of its frames' digests; drop
    set afterwards treats the same frames sent again as a new pipe with drop treats them."""
    pipe = FaultyPipe(FaultConfig(delay=0.05, rate=11520.0), 1, "to_host")
    assert seqs(pump(pipe, 300)) == list(range(300))
    assert not pipe._seen and pipe.events == []
    pipe.set_config(FaultConfig(drop=0.2))
    fresh = FaultyPipe(FaultConfig(drop=0.2), 1, "to_host")
    for i in range(500):
        pipe.send(frame(i), 10.0 + i * 0.01)
        fresh.send(frame(i), i * 0.01)
    assert [e.seq for e in pipe.events] == [e.seq for e in fresh.events]
    assert kinds(pipe).count("drop") > 50
