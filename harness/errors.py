"""Errors a user can cause: each prints as one line that says where and what to do, exit 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or setup (bad scenario, missing port...).
    `str(exc)` is the whole message: one line, no traceback."""

    exit_code = 2


class TargetError(UserError):
    """The device under test could not be reached or died."""
