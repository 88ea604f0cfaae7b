"""The sim's virtual time (`harness run --target sim --fast`): a trio clock whose time is the
simulator's, with the runner unthrottled (`powerhil-sim --fast FD`, firmware/sim/README.md).

The runner publishes its simulated cycle count on a shared page (a memfd it sends over the
lease socket), so reading the time is a memory read, not a system call. It runs only up to
the lease it is granted: whenever trio's loop is about to wait, the clock grants the runner
time up to the loop's next deadline, at most LEAD ahead of where the runner stands. So a timer
waiting then (a supply step, a command step, an ACK or retransmit timeout, the device watch)
fires at its simulated time, one set while a lease runs fires at most LEAD late, and the
host, however slowly it runs, sees what the firmware sent within LEAD of simulated time: while
it is busy no lease is granted, so the firmware's timers cannot run out on a host that merely
lags (no retransmit a real-time host would not see). A runner that reaches its lease tells
the host (a packet on the socket, which `serve` reads), and trio's loop, woken, grants the
next.

Before the runner is attached, and after it has gone, the clock runs on the wall clock from
where it stood, so the run's start (building, starting the runner) and its end (stopping it)
keep their real timeouts.
"""

from __future__ import annotations

import math
import mmap
import os
import socket
import struct
import time

import trio

MCU_HZ = 16_000_000
LEAD = 0.02
"""Simulated seconds the runner may run past the host's last look at it."""
POLL = LEAD / 4
"""Real seconds trio's loop waits at most while the runner runs: each wait renews the lease
before the runner (at a few times real time) reaches it."""
LEASE = struct.Struct("=Q")
"""A lease, and the runner's notices: a cycle count, native byte order (one machine)."""
PAGE = 4096


class SimClock(trio.abc.Clock):
    def __init__(self) -> None:
        self._base = 0.0
        """Trio seconds at `_mark` (wall) while detached; at cycle 0 while attached."""
        self._mark = 0.0
        self._cycles: memoryview | None = None
        """The runner's cycle count (one native uint64) while attached."""
        self._page: mmap.mmap | None = None
        self._socket: socket.socket | None = None
        self._granted = 0
        """The cycle count last granted."""
        self._last = 0

    # ---- trio.abc.Clock

    def start_clock(self) -> None:
        self._mark = time.perf_counter()

    def current_time(self) -> float:
        if self._cycles is None:
            return self._base + (time.perf_counter() - self._mark)
        cycles = self._cycles[0]
        if cycles < self._last:  # a read taken mid-store can only lag: never run back
            cycles = self._last
        self._last = cycles
        return self._base + cycles / MCU_HZ

    def deadline_to_sleep_time(self, deadline: float) -> float:
        now = self.current_time()
        if deadline <= now:
            return 0.0
        if self._cycles is None:
            return deadline - now
        # One cycle past the deadline: at the lease the clock reads at or after it.
        self._grant(math.ceil((min(deadline, now + LEAD) - self._base) * MCU_HZ) + 1)
        return POLL

    # ---- the runner

    @property
    def attached(self) -> bool:
        return self._cycles is not None

    def attach(self, lease: socket.socket) -> None:
        """Take the runner's shared page from `lease` (the host's end of the socket whose
        other end the runner was given with --fast, which the caller keeps and closes), which
        the runner sends before it prints its pty; from now on the time is the simulator's."""
        data, fds, _, _ = socket.recv_fds(lease, LEASE.size, 1, socket.MSG_DONTWAIT)
        if len(fds) != 1 or len(data) != LEASE.size:
            for fd in fds:
                os.close(fd)
            raise OSError("the sim runner sent no shared clock")
        try:
            page = mmap.mmap(fds[0], PAGE, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fds[0])
        lease.setblocking(False)
        now = self.current_time()
        self._page, self._socket = page, lease
        self._cycles = memoryview(page).cast("Q")
        self._last = self._granted = self._cycles[0]
        self._base = now - self._last / MCU_HZ

    def detach(self) -> None:
        """The runner has gone (or the run ends): the time runs on with the wall clock from
        where it stood, and no more is granted. The socket stays open (its owner closes it
        once the runner has stopped: the runner ends when it closes)."""
        if self._cycles is None:
            return
        now = self.current_time()
        self._cycles.release()
        self._cycles = None
        assert self._page is not None
        self._page.close()
        self._page = self._socket = None
        self._base, self._mark = now, time.perf_counter()

    async def serve(self) -> None:
        """Read the runner's notices (it stands at its lease: the loop, woken, grants more)
        until it hangs up or the run ends; then detach."""
        assert self._socket is not None
        sock = self._socket
        try:
            while True:
                await trio.lowlevel.wait_readable(sock)
                try:
                    while sock.recv(PAGE):
                        pass
                    return  # b"": the runner hung up
                except BlockingIOError:
                    pass
                except OSError:
                    return
        finally:
            self.detach()

    def _grant(self, cycles: int) -> None:
        if cycles <= self._granted or self._socket is None:
            return
        try:
            self._socket.send(LEASE.pack(cycles))
        except BlockingIOError:
            return  # the runner has not taken the last ones yet: granted on the next wait
        except OSError:
            return  # it has gone: `serve` sees the hang-up
        self._granted = cycles
