"""What every stream here checks the way trio's own streams do: one task at a time on each side,
and a receive size that is a positive integer or None."""

from __future__ import annotations

from types import TracebackType

import trio


class OneTask:
    """A side of a stream (sending or receiving) serves one task at a time: a second task that
    enters while the first is inside gets trio.BusyResourceError."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(f"another task is {self._what}")
        self._held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._held = False


def check_max_bytes(max_bytes: int | None) -> None:
    """receive_some's argument: None (whatever is there) or an int of at least 1."""
    if max_bytes is None:
        return
    if not isinstance(max_bytes, int):
        raise TypeError("max_bytes must be an integer >= 1 or None")
    if max_bytes < 1:
        raise ValueError("max_bytes must be an integer >= 1 or None")
