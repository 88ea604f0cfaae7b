"""The simavr board runner (firmware/sim): pty bridge, INA219 model, control channel.

The runner runs firmware/sim/testsketch, a sketch that reads and writes INA219 registers on
command over the pty and prints them raw, so register values are checked against the
datasheet (TI SBOS448) formulas as exact integers. Times asserted are simulated times
measured by the sketch (micros()), never wall-clock durations.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import termios
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "firmware/build/sim/powerhil-sim"
SKETCH = ROOT / "firmware/build/sim/testsketch/testsketch.elf"
TIMEOUT = 10.0  # seconds before a missing answer fails a test (never asserted on)
DEFAULT_CONFIG = 0x399F


@pytest.fixture(scope="session", autouse=True)
def built() -> None:
    """`make sim` builds the runner and the sketch (a no-op when they are up to date)."""
    proc = subprocess.run(["make", "-s", "sim"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode == 2 and "apt-get install" in proc.stderr:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert RUNNER.exists() and SKETCH.exists()


class LineReader:
    """Lines from a file descriptor, with a timeout, without Python's buffering in the way."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def line(self, timeout: float = TIMEOUT) -> str:
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"no line within {timeout} s (have {self.buf!r})")
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise EOFError(f"end of stream (have {self.buf!r})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().rstrip("\r")

    def quiet(self, seconds: float) -> bytes:
        """Whatever arrives within `seconds` (for checking that nothing does)."""
        end = time.monotonic() + seconds
        got = b""
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 4096)
                if not chunk:
                    break
                got += chunk
        return self.buf + got


def parse_ok(answer: str) -> dict[str, str]:
    words = answer.split()
    assert words and words[0] == "ok", answer
    return dict(w.split("=", 1) for w in words[1:])


class Board:
    """The sketch on the other side of the pty."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd, termios.TCSANOW)
        self.reader = LineReader(self.fd)

    def line(self) -> str:
        return self.reader.line()

    def ask(self, command: str) -> str:
        os.write(self.fd, command.encode() + b"\n")
        return self.line()

    def read(self, reg: int) -> int:
        words = self.ask(f"r {reg}").split()
        assert words[:2] == ["r", str(reg)], words
        return int(words[2])

    def write(self, reg: int, value: int) -> None:
        assert self.ask(f"w {reg} {value}") == f"w {reg} 0"

    def converted(self) -> dict[str, int]:
        """All six registers, read after the next conversion completes (CNVR)."""
        words = self.ask("c").split()
        assert words[0] == "c" and len(words) == 7, words
        return {k: int(v) for k, v in (w.split("=") for w in words[1:])}

    def close(self) -> None:
        os.close(self.fd)


class Runner:
    def __init__(self, *args: str, elf: Path = SKETCH) -> None:
        self.proc = subprocess.Popen(
            [str(RUNNER), *args, str(elf)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout and self.proc.stdin
        self.out = LineReader(self.proc.stdout.fileno())
        first = self.out.line()
        match = re.fullmatch(r"pty (/dev/pts/\d+)", first)
        assert match, first
        self.pty = match.group(1)
        self.pty_born = os.stat(self.pty).st_ctime_ns

    def pty_gone(self) -> bool:
        """Our pty no longer exists (its number may already serve another pty)."""
        try:
            return os.stat(self.pty).st_ctime_ns != self.pty_born
        except FileNotFoundError:
            return True

    def raw(self, line: str) -> str:
        assert self.proc.stdin
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self.out.line()

    def ctl(self, line: str) -> dict[str, str]:
        return parse_ok(self.raw(line))

    def board(self) -> Board:
        return Board(self.pty)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def runner_factory() -> Iterator[type[Runner]]:
    started: list[Runner] = []

    class Tracked(Runner):
        def __init__(self, *args: str, elf: Path = SKETCH) -> None:
            super().__init__(*args, elf=elf)
            started.append(self)

    yield Tracked
    for r in started:
        r.stop()


@pytest.fixture
def sim(runner_factory: type[Runner]) -> Iterator[tuple[Runner, Board]]:
    """A runner that waits for the pty, and the sketch after its first boot."""
    runner = runner_factory("--wait-open")
    board = runner.board()
    assert re.fullmatch(r"boot \d+ cal=0", board.line())
    yield runner, board
    board.close()


# ---- the datasheet, independently of the C model -------------------------------------------


@dataclass(frozen=True)
class Expected:
    shunt: int
    bus: int  # 4 mV count (register bits 15..3)
    current: int
    power: int
    ovf: bool


def trunc_div(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def datasheet(volts: float, amps: float, ohms: float, cal: int, config: int) -> Expected:
    """INA219 registers for steady inputs (SBOS448: shunt 10 uV LSB, bus 4 mV LSB,
    Current = Shunt x Cal / 4096, Power = Current x Bus / 5000)."""
    pga_limit = (4000, 8000, 16000, 32000)[(config >> 11) & 3]
    shunt = max(-pga_limit, min(pga_limit, round(amps * ohms * 100_000)))
    bus = max(0, min(8191 if config & 0x2000 else 4095, round(volts * 250)))
    current = trunc_div(shunt * cal, 4096)
    ovf = not -32768 <= current <= 32767
    current = max(-32768, min(32767, current))
    power = abs(current) * bus // 5000
    if power > 0xFFFF:
        ovf, power = True, 0xFFFF
    return Expected(shunt, bus, current, power, ovf)


CASES = [
    # volts, amps, ohms, calibration, configuration
    (5.0, 0.25, 0.1, 4096, DEFAULT_CONFIG),
    (12.0, 1.5, 0.1, 4096, DEFAULT_CONFIG),
    (3.3, -0.1234, 0.1, 4096, DEFAULT_CONFIG),
    (5.0, 0.5, 0.1, 8192, DEFAULT_CONFIG),
    (24.5, 0.0371, 0.05, 10240, DEFAULT_CONFIG),
    (5.0, 2.0, 0.1, 4096, DEFAULT_CONFIG & ~0x1800),  # PGA /1: clipped at 40 mV
    (5.0, -0.9, 0.1, 4096, (DEFAULT_CONFIG & ~0x1800) | 0x0800),  # PGA /2: -80 mV
    (20.0, 0.1, 0.1, 4096, DEFAULT_CONFIG & ~0x2000),  # 16 V range: bus clipped
    (5.0, 3.2, 0.1, 4194, DEFAULT_CONFIG),  # the largest current without OVF: 32765
    (5.0, 3.2, 0.1, 0xFFFE, DEFAULT_CONFIG),  # current overflows: OVF, saturated
    (26.0, 3.0, 0.1, 40960, DEFAULT_CONFIG),  # OVF at 26 V: power of the saturated current
]


@pytest.mark.parametrize(("volts", "amps", "ohms", "cal", "config"), CASES)
def test_registers_follow_the_datasheet(
    sim: tuple[Runner, Board], volts: float, amps: float, ohms: float, cal: int, config: int
) -> None:
    runner, board = sim
    runner.ctl(f"set volts={volts} amps={amps} shunt={ohms}")
    board.write(5, cal)
    board.write(0, config)  # clears CNVR: the next conversion sees the inputs above
    regs = board.converted()
    want = datasheet(volts, amps, ohms, cal, config)
    assert regs == {
        "cfg": config,
        "shunt": want.shunt,
        "bus": want.bus << 3 | 2 | int(want.ovf),
        "power": want.power,
        "current": want.current,
        "cal": cal & 0xFFFE,
    }
    state = runner.ctl("get")
    assert int(state["r_shunt"]) == want.shunt & 0xFFFF
    assert int(state["r_bus"]) >> 3 == want.bus
    assert int(state["r_current"]) == want.current & 0xFFFF
    assert int(state["r_power"]) == want.power
    assert int(state["r_cal"]) == cal & 0xFFFE


def test_pty_path_first_line_and_boot_on_open(runner_factory: type[Runner]) -> None:
    runner = runner_factory("--wait-open")
    state = runner.ctl("get")
    assert state["mcu"] == "wait" and state["pty"] == "closed" and state["starts"] == "0"
    board = runner.board()
    assert board.line() == "boot 0 cal=0"  # erased EEPROM: 0xFFFF + 1
    assert board.ask("p") == "p 0"  # the INA219 acknowledges its address
    state = runner.ctl("get")
    assert state["mcu"] == "run" and state["pty"] == "open" and state["starts"] == "1"
    assert int(state["tx"]) > 0 and int(state["rx"]) > 0
    board.close()


def test_calibration_and_config_read_back(sim: tuple[Runner, Board]) -> None:
    runner, board = sim
    assert board.read(5) == 4096  # written by the sketch at boot
    board.write(5, 0x1235)
    assert board.read(5) == 0x1234  # bit 0 of the calibration register reads 0
    board.write(0, 0x019F)
    assert board.read(0) == 0x019F
    board.write(4, 0x7777)  # read-only: ignored
    assert board.read(0) == 0x019F
    board.write(0, 0x8000)  # RST: power-on values, RST clears itself
    assert board.read(0) == DEFAULT_CONFIG
    assert board.read(5) == 0
    assert int(runner.ctl("get")["r_config"]) == DEFAULT_CONFIG


def conversion_time(board: Board, config: int) -> int:
    """Simulated microseconds from writing `config` to seeing CNVR, as the sketch measures."""
    words = board.ask(f"t {config}").split()
    assert words[0] == "t" and words[1] != "timeout", words
    return int(words[1])


@pytest.mark.parametrize(
    ("config", "micros"),
    [
        (0x399F, 532 + 532),  # shunt and bus, 12 bits each
        (0x3807, 84 + 84),  # 9 bits each
        (0x399D, 532),  # shunt only, continuous
        (0x3D9E, 4260),  # bus only, 8 samples
        (0x3FFF, 68100 + 68100),  # 128 samples each
        (0x399B, 532 + 532),  # shunt and bus, triggered
    ],
)
def test_conversion_time_follows_adc_settings(
    sim: tuple[Runner, Board], config: int, micros: int
) -> None:
    _, board = sim
    took = conversion_time(board, config)
    # The sketch polls CNVR over I2C at 100 kHz: each poll costs well under a millisecond.
    assert micros <= took < micros + 1000


def bus_micros(board: Board, hz: int, op: str) -> float:
    """Simulated microseconds one register read (`m`) or write (`M`) takes at `hz`, as the
    sketch's Wire does it: START, address, pointer (and for a read, STOP, START, address, two
    bytes), STOP; the mean of 200 back to back."""
    twbr = (16_000_000 // hz - 16) // 2
    assert board.ask(f"k {hz}") == f"k {twbr}"
    words = board.ask(f"{op} 2 200" if op == "m" else f"{op} 5 200").split()
    assert words[0] == op and words[1] != "i2c", words
    return int(words[1]) / 200


def test_the_bus_takes_the_time_its_bit_rate_sets(sim: tuple[Runner, Board]) -> None:
    _, board = sim
    read_100k, write_100k = bus_micros(board, 100_000, "m"), bus_micros(board, 100_000, "M")
    read_400k, write_400k = bus_micros(board, 400_000, "m"), bus_micros(board, 400_000, "M")
    # A read is 5 bytes of 9 SCL periods (address, pointer; address, two data bytes) and two
    # STARTs and STOPs of 1 each: 49 periods, 490 us at 100 kHz,
    # plus the MCU's own time in Wire, the same at either rate.
    assert 450 <= read_100k <= 600
    # The bus's part scales with the period (10 us vs 2.5 us): the MCU's part cancels out.
    assert read_100k - read_400k == pytest.approx(49 * 7.5, rel=0.03)
    # A write is 4 bytes (address, pointer, two data bytes), a START and a STOP: 38 periods.
    assert write_100k - write_400k == pytest.approx(38 * 7.5, rel=0.03)
    assert write_100k < read_100k
    # The prescaler counts too: TWBR 18 with TWPS 1 (x4) is 100 kHz again.
    assert board.ask("K 18 1") == "K 18 1"
    words = board.ask("m 2 200").split()
    assert words[0] == "m" and int(words[1]) / 200 == pytest.approx(read_100k, rel=0.01)


def test_cnvr_cleared_by_power_read_triggered_mode(sim: tuple[Runner, Board]) -> None:
    runner, board = sim
    runner.ctl("set volts=5 amps=0.25")
    conversion_time(board, 0x399B)  # one triggered conversion, then the ADC idles
    assert board.read(2) == 1250 << 3 | 2  # CNVR stays until the power register is read
    assert board.read(2) == 1250 << 3 | 2
    assert board.read(3) == 625
    assert board.read(2) == 1250 << 3  # cleared, and no new conversion sets it again
    assert board.read(2) == 1250 << 3
    board.write(0, 0x399B)  # writing the mode triggers the next conversion
    assert board.converted()["bus"] == 1250 << 3 | 2


def test_power_down_mode_stops_conversions(sim: tuple[Runner, Board]) -> None:
    runner, board = sim
    runner.ctl("set volts=5 amps=0.1")
    board.converted()
    board.write(0, 0x3998)  # power-down: conversions stop, CNVR is kept
    assert board.read(3) == 250  # reading power clears CNVR
    runner.ctl("set volts=9 amps=0.2")
    assert board.read(2) == 1250 << 3  # old value kept, no conversion, CNVR clear
    assert board.read(1) == 1000
    board.write(0, DEFAULT_CONFIG)
    regs = board.converted()
    assert regs["bus"] == 2250 << 3 | 2 and regs["shunt"] == 2000


def test_reset_command_boots_again(sim: tuple[Runner, Board]) -> None:
    runner, board = sim
    state = runner.ctl("reset")
    assert state["mcu"] == "run" and state["starts"] == "2"
    assert board.line() == "boot 1 cal=0"
    runner.ctl("reset")
    assert board.line() == "boot 2 cal=0"


def test_brownout_on_shared_rail_is_a_new_boot(sim: tuple[Runner, Board]) -> None:
    runner, board = sim
    state = runner.ctl("set shared=1 volts=2.69")
    assert state["mcu"] == "off" and state["rail"] == "2.69"
    assert board.reader.quiet(0.05) == b""  # an unpowered MCU says nothing
    state = runner.ctl("set volts=2.7")
    assert state["mcu"] == "run" and state["starts"] == "2"
    assert board.line() == "boot 1 cal=0"
    # The INA219 lost power with the MCU: power-on values, then the sketch's calibration.
    assert board.read(5) == 4096 and board.read(0) == DEFAULT_CONFIG
    # Pulling the supply is a brown-out too.
    assert runner.ctl("set supply=off")["mcu"] == "off"
    assert runner.ctl("set supply=on")["mcu"] == "run"
    assert board.line() == "boot 2 cal=0"
    # Back on its own supply, the MCU no longer cares about the rail.
    state = runner.ctl("set shared=0 volts=0")
    assert state["mcu"] == "run" and state["starts"] == "3"


def test_pulled_supply_without_shared_rail_reads_zero(sim: tuple[Runner, Board]) -> None:
    runner, board = sim
    runner.ctl("set volts=5 amps=0.25")
    state = runner.ctl("set supply=off")
    assert state["mcu"] == "run" and state["rail"] == "0"
    board.write(0, DEFAULT_CONFIG)
    regs = board.converted()
    assert (regs["shunt"], regs["bus"], regs["current"], regs["power"]) == (0, 2, 0, 0)
    runner.ctl("set supply=on")
    board.write(0, DEFAULT_CONFIG)
    assert board.converted()["shunt"] == 2500


def test_absent_sensor_does_not_acknowledge(sim: tuple[Runner, Board]) -> None:
    runner, board = sim
    runner.ctl("set sensor=off")
    # simavr 1.6's TWI master reports a NACKed SLA+W as a data NACK: Wire says 3, not 2.
    assert board.ask("p") in ("p 2", "p 3")
    assert board.ask("d") == "d i2c"
    runner.ctl("set sensor=on")
    assert board.ask("p") == "p 0"


def test_sensor_cycle_powers_the_ina219_alone_back_to_its_power_on_values(
    sim: tuple[Runner, Board],
) -> None:
    runner, board = sim
    runner.ctl("set amps=0.25")
    board.write(0, 0x3D57)
    assert board.converted()["current"] == 2500
    state = runner.ctl("sensor-cycle")
    assert (state["r_config"], state["r_cal"], state["conversions"]) == (
        str(DEFAULT_CONFIG),
        "0",
        "0",
    )
    assert state["starts"] == "1" and state["mcu"] == "run"  # the MCU runs on
    assert board.read(5) == 0 and board.read(0) == DEFAULT_CONFIG
    regs = board.converted()  # converting again, uncalibrated: no current, no power
    assert (regs["shunt"], regs["current"], regs["power"]) == (2500, 0, 0)
    runner.ctl("set shared=1 volts=1")
    assert runner.raw("sensor-cycle") == "err state the INA219 has no power"


def test_a_rail_above_the_absolute_maximum_is_flagged_and_reads_clipped(
    sim: tuple[Runner, Board],
) -> None:
    runner, board = sim
    assert runner.ctl("set volts=26 amps=0.1")["over_max"] == "0"
    assert runner.ctl("set volts=26.5")["over_max"] == "1"
    board.write(0, DEFAULT_CONFIG)
    assert board.converted()["bus"] >> 3 == 6625  # inside the 32 V range: read as it is
    runner.ctl("set volts=40")
    board.write(0, DEFAULT_CONFIG)
    assert board.converted()["bus"] >> 3 == 8191  # the register's full scale, 32.764 V
    assert runner.ctl("set supply=off")["over_max"] == "0"


def test_burst_of_commands_is_paced_not_lost(sim: tuple[Runner, Board]) -> None:
    runner, board = sim
    os.write(board.fd, b"r 5\n" * 12)  # arrives at once; the UART takes it at 115200 baud
    assert [board.line() for _ in range(12)] == ["r 5 4096"] * 12
    assert runner.ctl("get")["rx_dropped"] == "0"


def test_reset_on_open(runner_factory: type[Runner]) -> None:
    runner = runner_factory("--wait-open", "--reset-on-open")
    board = runner.board()
    assert board.line() == "boot 0 cal=0"
    board.close()
    runner.ctl("get")  # commands see the pty as it is when they arrive: closed
    board = runner.board()
    assert board.line() == "boot 1 cal=0"
    board.close()


def test_eeprom_file_keeps_the_boot_counter(runner_factory: type[Runner], tmp_path: Path) -> None:
    eeprom = tmp_path / "eeprom.bin"
    for boot in range(2):
        runner = runner_factory("--wait-open", "--eeprom", str(eeprom))
        board = runner.board()
        assert board.line() == f"boot {boot} cal=0"
        assert runner.raw("quit") == "ok bye"
        assert runner.proc.wait(TIMEOUT) == 0
        board.close()
    assert eeprom.stat().st_size == 1024
    assert eeprom.read_bytes()[:2] == b"\x01\x00"


def test_control_errors_change_nothing(runner_factory: type[Runner]) -> None:
    runner = runner_factory()
    before = runner.ctl("get")
    assert runner.raw("frobnicate") == "err unknown frobnicate"
    assert runner.raw("set volts=abc") == "err arg volts=abc"
    assert runner.raw("set volts=7 amps=1000") == "err range amps=1000"
    assert runner.raw("set color=red") == "err arg unknown key color"
    assert runner.raw("get now") == "err arg get takes no arguments"
    assert runner.raw("set") == "err arg set needs key=value"
    after = runner.ctl("get")
    assert (after["volts"], after["amps"]) == (before["volts"], before["amps"])
    assert runner.ctl("time")["ratio"]
    assert parse_ok(runner.raw("help"))["commands"].split(",")[0] == "get"


def assert_gone(runner: Runner) -> None:
    assert runner.proc.wait(TIMEOUT) == 0
    assert runner.pty_gone()
    assert runner.proc.stderr
    assert runner.proc.stderr.read() == b""


def test_outlives_the_thread_that_started_it(runner_factory: type[Runner]) -> None:
    """trio starts processes from a worker thread that ends after 10 s idle: the runner must
    not take that thread's end for its parent's (it ends when its stdin closes instead)."""
    started: list[Runner] = []
    starter = threading.Thread(target=lambda: started.append(runner_factory()))
    starter.start()
    starter.join()
    (runner,) = started
    time.sleep(0.3)
    assert runner.proc.poll() is None
    assert runner.ctl("time")["ratio"]


@pytest.mark.parametrize("how", ["quit", "eof", "sigterm", "sigint"])
def test_exits_cleanly(runner_factory: type[Runner], how: str) -> None:
    runner = runner_factory()
    runner.ctl("get")
    assert runner.proc.stdin
    if how == "quit":
        assert runner.raw("quit") == "ok bye"
    elif how == "eof":
        runner.proc.stdin.close()
    else:
        runner.proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    assert_gone(runner)


def test_exits_while_a_client_holds_the_pty(runner_factory: type[Runner]) -> None:
    runner = runner_factory("--wait-open")
    board = runner.board()
    board.line()
    assert runner.raw("quit") == "ok bye"
    assert runner.proc.wait(TIMEOUT) == 0
    with contextlib.suppress(OSError):  # the client sees the line hang up: EOF or EIO
        assert os.read(board.fd, 100) == b""
    board.close()
    assert runner.pty_gone()


def bad_firmware(kind: str, directory: Path) -> Path:
    if kind == "missing":
        return directory / "missing.elf"
    if kind == "text":
        path = directory / "text.elf"
        path.write_text("not an elf")
        return path
    return Path("/bin/sh")  # an ELF for the host, not an AVR


@pytest.mark.parametrize(
    ("kind", "message"),
    [("missing", "cannot read firmware"), ("text", "not an ELF"), ("host", "not an AVR ELF")],
)
def test_bad_firmware_is_one_line_on_stderr(tmp_path: Path, kind: str, message: str) -> None:
    elf = bad_firmware(kind, tmp_path)
    proc = subprocess.run([str(RUNNER), str(elf)], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("powerhil-sim: ") and message in lines[0]
