"""Serial numbers: positive, at most 16 octets, at least 64 random bits (RFC 5280 §4.1.2.2, BR §7.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ca.issuance.serial import new_serial, serial_hex


@given(st.binary(min_size=16, max_size=16))
def test_serial_bounds(raw: bytes) -> None:
    draws = iter([raw, b"\x7f" + b"\xff" * 15])
    value = new_serial(lambda n: next(draws))
    assert 1 << 64 <= value < 1 << 127
    assert serial_hex(value) == format(value, "x")


def test_short_serial_is_drawn_again() -> None:
    draws = iter([b"\x00" * 8 + b"\xff" * 8, b"\x01" + b"\x00" * 15])
    assert new_serial(lambda n: next(draws)) == 1 << 120


def test_top_bit_cleared() -> None:
    assert new_serial(lambda n: b"\xff" * n) == (1 << 127) - 1


def test_serial_hex_refuses_non_positive() -> None:
    with pytest.raises(ValueError):
        serial_hex(0)


def test_serials_are_distinct() -> None:
    assert len({new_serial() for _ in range(10000)}) == 10000
