"""Errors a user can cause: each prints as one line that says where and what to do, exit 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or setup (bad scenario, missing port...).
    `str(exc)` is the whole message: one line, no traceback."""

    exit_code = 2


class TargetError(UserError):
    """The device under test could not be reached or died."""


def user_error_in(exc: BaseException) -> UserError | None:
    """The UserError inside an exception group (trio wraps what a nursery's task raised)."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := user_error_in(inner)) is not None:
                return found
    return None
