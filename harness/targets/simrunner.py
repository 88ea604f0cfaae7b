"""The simulator's runner process (firmware/sim's powerhil-sim): building it, starting it with
its options, its control channel (firmware/sim/README.md), the tail of its stderr, and stopping
it with no process left behind. The sim target and the virtual bench both run it."""

from __future__ import annotations

import collections
import contextlib
import subprocess
from pathlib import Path

import trio

from harness.errors import TargetError

START_TIMEOUT = 10.0
STOP_TIMEOUT = 3.0
STDERR_LINES = 20
SOURCE_ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path("firmware/build/sim/powerhil-sim")
ELF = Path("firmware/build/uno/powerhil.elf")


def source_root() -> Path:
    """The checkout the sim is built in (the sim needs the firmware's sources and a toolchain)."""
    if not (SOURCE_ROOT / "firmware" / "sim").is_dir():
        raise TargetError(
            "the sim target needs a source checkout of powerhil (firmware/ not found next to the harness package)"
        )
    return SOURCE_ROOT


async def build(root: Path) -> None:
    """`make firmware sim`: quick when both are up to date. A missing toolchain or simavr is
    one line naming the Debian packages to install."""
    try:
        done = await trio.run_process(
            ["make", "--no-print-directory", "-C", str(root), "firmware", "sim"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    except FileNotFoundError:
        raise TargetError("the sim target needs make: sudo apt-get install make") from None
    if done.returncode != 0:
        lines = [x for x in done.stderr.decode(errors="replace").splitlines() if x.strip()]
        hint = next((x for x in lines if "apt-get install" in x), None)
        raise TargetError(
            hint
            or f"building the firmware and the sim failed: {lines[-1] if lines else done.returncode}"
        )


class Control:
    """The runner's control channel: one line in, one line out."""

    def __init__(self, stdin: trio.abc.SendStream, stdout: trio.abc.ReceiveStream) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._buf = bytearray()
        self._lock = trio.Lock()

    async def readline(self) -> str:
        while (nl := self._buf.find(b"\n")) < 0:
            data = await self._stdout.receive_some(4096)
            if not data:
                raise TargetError("the sim runner closed its output")
            self._buf += data
        line = bytes(self._buf[:nl])
        del self._buf[: nl + 1]
        return line.decode(errors="replace")

    async def command(self, line: str) -> str:
        async with self._lock:
            await self._stdin.send_all(line.encode() + b"\n")
            return await self.readline()


class SimRunner:
    """One powerhil-sim process running the firmware ELF with `options` (the runner's command
    line options, firmware/sim/README.md) and the file descriptors in `pass_fds`."""

    def __init__(self, options: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        self.options = options
        self.pass_fds = pass_fds
        """File descriptors the runner inherits (its options name them)."""
        self.process: trio.Process | None = None
        self.failure: str | None = None
        """Why the runner stopped on its own, if it did."""
        self.exited = trio.Event()
        self.clock: dict[str, float] = {}
        """The runner's simulated and wall seconds and their ratio, read as it is stopped."""
        self._control: Control | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stopping = False
        self._stop_lock = trio.Lock()

    async def start(self, nursery: trio.Nursery) -> str:
        """Build what is missing, start the runner with its stderr kept and its exit watched in
        `nursery` (whose end stops it), and return its pty's path."""
        root = source_root()
        await build(root)
        process = await trio.lowlevel.open_process(
            [str(root / RUNNER), *self.options, str(root / ELF)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: a terminal's Ctrl-C (or a group's SIGTERM) reaches the harness,
            # which stops the runner itself; the end of its stdin ends it if the harness dies.
            start_new_session=True,
            pass_fds=self.pass_fds,
        )
        self.process = process
        assert process.stdin and process.stdout and process.stderr
        self._control = Control(process.stdin, process.stdout)
        nursery.start_soon(self._keep_stderr, process.stderr)
        nursery.start_soon(self._watch)
        with trio.move_on_after(START_TIMEOUT):
            first = await self._control.readline()
            if first.startswith("pty "):
                return first[4:].strip()
        await self.stop()
        raise TargetError(f"the sim runner did not start: {self.tail() or 'no output'}")

    async def command(self, line: str) -> str:
        """Send one control line; an answer other than `ok ...` goes to the stderr tail."""
        assert self._control is not None
        answer = await self._control.command(line)
        if not answer.startswith("ok"):
            self._stderr.append(f"{line}: {answer}")
        return answer

    async def _keep_stderr(self, stderr: trio.abc.ReceiveStream) -> None:
        buf = b""
        while data := await stderr.receive_some(4096):
            buf += data
            *lines, buf = buf.split(b"\n")
            self._stderr.extend(x.decode(errors="replace") for x in lines if x.strip())

    def tail(self) -> str:
        return " | ".join(self._stderr)

    async def _watch(self) -> None:
        """Notice the runner dying; on the end of its nursery (cancellation), stop it cleanly."""
        assert self.process is not None
        try:
            code = await self.process.wait()
            if not self._stopping:
                self.failure = (
                    f"the sim runner exited with status {code}: {self.tail() or 'no stderr'}"
                )
            self.exited.set()
        finally:
            with trio.CancelScope(shield=True):
                await self.stop()

    async def stop(self) -> None:
        """End the runner if it still runs (its clock read first)."""
        async with self._stop_lock:
            process = self.process
            if process is not None and process.returncode is None:
                self._stopping = True
                await self._read_clock()
                await _end(process)

    async def _read_clock(self) -> None:
        """`time` answers `ok sim=S wall=W ratio=R`; kept in `clock` for the record."""
        if self._control is None:
            return
        with trio.move_on_after(1.0):
            with contextlib.suppress(TargetError, trio.BrokenResourceError, OSError):
                answer = await self._control.command("time")
                if answer.startswith("ok "):
                    pairs = (x.partition("=") for x in answer.split()[1:])
                    self.clock = {k: float(v) for k, _, v in pairs}


async def _end(process: trio.Process) -> None:
    """quit, then SIGTERM, then SIGKILL: no process is left behind."""
    with trio.move_on_after(STOP_TIMEOUT):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            assert process.stdin is not None
            await process.stdin.send_all(b"quit\n")
        await process.wait()
        return
    process.terminate()
    with trio.move_on_after(STOP_TIMEOUT):
        await process.wait()
        return
    process.kill()
    await process.wait()
