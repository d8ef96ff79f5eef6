"""Certificate serial numbers (RFC 5280 §4.1.2.2; EN 319 411-1 GEN-6.3.3-02A; CA/B BR §7.1)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Final

__all__ = ["SERIAL_BYTES", "new_serial", "serial_hex"]

SERIAL_BYTES: Final = 16


def new_serial(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> int:
    """16 bytes from a CSPRNG with the top bit cleared: positive, at most 16 octets, 127 random bits.

    A value below 2^64 (probability 2^-63) is drawn again so that every serial is long enough to
    carry at least 64 random bits.
    """
    while True:
        value = int.from_bytes(random_bytes(SERIAL_BYTES), "big") & ((1 << (8 * SERIAL_BYTES - 1)) - 1)
        if value >= 1 << 64:
            return value


def serial_hex(serial: int) -> str:
    """The storage form: lowercase hex of the positive integer, no leading zeros."""
    if serial <= 0:
        raise ValueError("serial numbers are positive (RFC 5280 §4.1.2.2)")
    return format(serial, "x")
