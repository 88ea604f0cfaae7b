"""Errors a user can cause: each prints as one line that says where and what to do, exit 2."""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class UserError(Exception):
    """A problem with the user's input or setup (bad scenario, missing port...).
    `str(exc)` is the whole message: one line, no traceback."""

    exit_code = 2


class TargetError(UserError):
    """The device under test could not be reached or died."""


def found_in(exc: BaseException, kind: type[E]) -> E | None:
    """The first `kind` in `exc` or, depth first, in the exception groups around it (trio wraps
    what a nursery's task raised)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := found_in(inner, kind)) is not None:
                return found
    return None
