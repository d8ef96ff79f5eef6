"""The pure SMS-TAN rules (ra/tan.py): E.164 numbers, channels x products, TAN and registration
secret generation, the keyed TAN digest's bindings, and the rate-limit arithmetic."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ra.errors import RAError, RAErrorKind
from ra.products import ProductError, load_products, parse_products
from ra.tan import (
    check_application,
    new_registration_secret,
    new_tan,
    normalise_mobile,
    normalise_secret,
    offered,
    require_offered,
    retry_after,
    tan_digest,
)

PROFILES = {"qes-natural": "natural", "qseal-legal": "legal", "upc-auth": "natural"}
BASE = (
    'title = "T"\nsubject = "natural"\ndelivery = "card"\nfour_eyes = false\nvalidity_days = 365\n'
    'methods = ["on-site"]\nslots = [{ name = "s", profile = "qes-natural" }]\n'
)


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("+4915123456789", "+4915123456789"),
        ("+49 151 2345-6789", "+4915123456789"),
        ("0049 (151) 23456789", "+4915123456789"),
        ("+43/664.1234567", "+436641234567"),
    ],
)
def test_mobile_numbers_normalise_to_e164(typed: str, e164: str) -> None:
    assert normalise_mobile(typed) == e164


@pytest.mark.parametrize(
    "typed",
    [
        "015123456789",
        "+0151234567",
        "+49",
        "+4915123456789012",
        "+49151abc4567",
        "",
        "+49 151 23456789\n+1",
        "++4915123",
    ],
)
def test_mobile_numbers_refused(typed: str) -> None:
    with pytest.raises(RAError) as exc:
        normalise_mobile(typed)
    assert exc.value.kind is RAErrorKind.MALFORMED and "E.164" in exc.value.detail


def test_channels_and_products() -> None:
    products = load_products(PROFILES)  # type: ignore[arg-type]
    card, upc = products["qes-card"], products["upc-card"]
    assert offered(card, "partner") and not offered(card, "portal") and not offered(upc, "partner")
    with pytest.raises(RAError, match="portal") as exc:
        require_offered(card, "portal")
    assert exc.value.kind is RAErrorKind.POLICY_VIOLATION
    with pytest.raises(RAError, match="not offered"):
        require_offered(upc, "partner")
    assert check_application(card, "partner", "+49 151 23456789") == "+4915123456789"
    assert check_application(card, "portal", None) is None  # no number: any channel
    with pytest.raises(RAError, match="portal"):
        check_application(card, "portal", "+4915123456789")
    with pytest.raises(RAError, match="channel must be one of") as exc:
        check_application(card, "shop", None)
    assert exc.value.kind is RAErrorKind.MALFORMED


@pytest.mark.parametrize(
    ("value", "message"),
    [('["portal"]', "never offered for portal"), ('["kiosk"]', "unknown channel"), ('"partner"', "list")],
)
def test_product_sms_tan_channels_validated(value: str, message: str) -> None:
    with pytest.raises(ProductError, match=message):
        parse_products(f"[p]\n{BASE}sms_tan_channels = {value}\n", PROFILES)  # type: ignore[arg-type]
    parsed = parse_products(f'[p]\n{BASE}sms_tan_channels = ["partner"]\n', PROFILES)  # type: ignore[arg-type]
    assert parsed["p"].sms_tan_channels == frozenset({"partner"})


def test_tans_are_six_random_digits() -> None:
    tans = {new_tan() for _ in range(2000)}
    assert all(re.fullmatch(r"[0-9]{6}", t) for t in tans)
    assert len(tans) > 1990  # 2000 draws from 10^6: a handful of collisions at most
    assert any(t.startswith("0") for t in tans)  # leading zeros kept


def test_tan_digest_binds_key_salt_card_purpose_and_tan() -> None:
    key = b"k" * 32
    base = tan_digest(key, "s1", 7, "revocation", "123456")
    assert base == tan_digest(key, "s1", 7, "revocation", "123456")
    assert (
        len(
            {
                base,
                tan_digest(b"x" * 32, "s1", 7, "revocation", "123456"),
                tan_digest(key, "s2", 7, "revocation", "123456"),
                tan_digest(key, "s1", 8, "revocation", "123456"),
                tan_digest(key, "s1", 7, "follow-up", "123456"),
                tan_digest(key, "s1", 7, "revocation", "123457"),
            }
        )
        == 6
    )
    assert "123456" not in base


def test_registration_secrets() -> None:
    secrets_ = {new_registration_secret() for _ in range(200)}
    assert len(secrets_) == 200
    for s in secrets_:
        assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}", s)
        assert normalise_secret(s) == s.replace("-", "")
        assert normalise_secret(s.lower().replace("-", " ")) == s.replace("-", "")
    # Letters confused when typing from paper count as the digits they look like.
    assert normalise_secret("OOOO-IIII-LLLL-2222") == "0000111111112222"
    for bad in ("", "ABCD-EFGH", "ABCD-EFGH-JKMN-PQRSU", "ABCD-EFGH-JKMN-PQR!"):
        assert normalise_secret(bad) is None


def test_retry_after_counts_the_window() -> None:
    now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    times = [now - dt.timedelta(minutes=m) for m in (50, 40, 30)]
    assert retry_after(times, 4, hour, now) is None
    assert retry_after(times, 3, hour, now) == 600  # the oldest leaves the window in 10 minutes
    assert retry_after(times, 2, hour, now) == 1200
    assert retry_after([now - hour], 1, hour, now) == 1  # never 0: the caller must wait
