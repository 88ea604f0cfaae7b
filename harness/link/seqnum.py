"""Serial-number arithmetic (RFC 1982 style) for seqs that wrap at 2**32 and boots at 2**16."""

from __future__ import annotations

from harness.link.fields import U16, U32


def diff(a: int, b: int, modulus: int = U32 + 1) -> int:
    """a - b as a signed distance on the circle: in -modulus/2 .. modulus/2 - 1."""
    half = modulus // 2
    return (a - b + half) % modulus - half


def add(a: int, n: int) -> int:
    """a + n, wrapped to a 32-bit seq."""
    return (a + n) & U32


def boot_is_newer(new: int, old: int) -> bool:
    """Whether boot counter `new` comes after `old` (both wrap at 2**16)."""
    return diff(new, old, U16 + 1) > 0
