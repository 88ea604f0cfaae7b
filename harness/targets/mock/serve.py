"""`harness mock`: the mock device on a pseudo-terminal, until Ctrl-C.

    $ harness mock
    /dev/pts/5
    $ python -m serial.tools.miniterm /dev/pts/5 115200

Frames are readable as they come; to type a command, paste a framed line (`harness frame
'{"cmd":"ping","seq":1}'` prints one with its CRC).
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from harness.scenario.model import DeviceSpec
from harness.scenario.profile import Profile
from harness.signals import stop_on_signal
from harness.targets.mock.device import MockDevice
from harness.transports.pty import Pty


async def _serve(profile: Profile, spec: DeviceSpec, seed: int) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    stop = trio.Event()
    async with trio.open_nursery() as signals:
        await signals.start(stop_on_signal, stop)
        await _serve_until(stop, MockDevice(profile=profile, spec=spec, seed=seed))
        signals.cancel_scope.cancel()
    print("mock stopped", file=sys.stderr)


async def _serve_until(stop: trio.Event, device: MockDevice) -> None:
    pty = Pty()
    print(pty.path, flush=True)
    print(f"mock device on {pty.path} (115200 baud); Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(device.run, pty.stream)
            await stop.wait()
            nursery.cancel_scope.cancel()
    finally:
        await pty.aclose()


def serve_mock(scenario: Path | None, seed: int) -> int:
    if scenario is not None:
        from harness.scenario.load import load

        sc = load(scenario)
        profile, spec = sc.supply, sc.device
    else:
        profile, spec = Profile.constant(5.0, 0.25), DeviceSpec()
    trio.run(_serve, profile, spec, seed)
    return 0
