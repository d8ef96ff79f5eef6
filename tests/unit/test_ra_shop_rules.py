"""Pure rules of shop codes and transport PINs: code format and normalisation, the keyed digest,
what a shop may offer, the shop rules of an order, the sliding-window limit, PIN generation."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ra.credentials import DataKey
from ra.errors import RAError, RAErrorKind
from ra.products import IdentMethod, load_products
from ra.rate_limit import retry_after
from ra.shop import CODE_ALPHABET, check_offer, code_digest, new_shop_code, normalise_code, order_findings
from ra.store.shop_repo import ShopRec
from ra.transport_pin import new_transport_pin, pin_aad

PROFILES = {"qes-natural": "natural", "qseal-legal": "legal", "upc-auth": "natural"}
PRODUCTS = load_products(PROFILES)  # type: ignore[arg-type]
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
KEY = DataKey(bytes(range(32)))


def _shop(**over: object) -> ShopRec:
    values: dict[str, object] = {
        "id": 1,
        "organisation_id": 7,
        "organisation_name": "Musterfirma GmbH",
        "name": "Staff shop",
        "products": ("qes-card", "seal-card"),
        "methods": ("on-site", "postident-branch"),
        "valid_until": None,
        "enabled": True,
        "created_at": NOW,
        "created_by": "ra",
        "disabled_at": None,
        "disabled_by": None,
        "members": 0,
    }
    values.update(over)
    return ShopRec(**values)  # type: ignore[arg-type]


def test_codes_are_random_grouped_and_unambiguous() -> None:
    codes = {new_shop_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code)
        assert not set(code.replace("-", "")) & set("ILOU") and set(code.replace("-", "")) <= set(CODE_ALPHABET)
    assert len(CODE_ALPHABET) == 32 == len(set(CODE_ALPHABET))


def test_typed_codes_are_normalised() -> None:
    assert normalise_code(" ab0c-1d2e-fgh3 ") == "AB0C1D2EFGH3"
    assert normalise_code("abOc ld2e iGH3") == "AB0C1D2E1GH3"  # O -> 0, I and L -> 1 (Crockford)
    for bad in ("", "ABCD-EFGH", "ABCD-EFGH-JKMN-P", "ABCD-EFGH-JKU!", "ABCD-EFGH-JKUU"):
        with pytest.raises(RAError) as exc:
            normalise_code(bad)
        assert exc.value.kind is RAErrorKind.MALFORMED


def test_digest_is_keyed_and_ignores_typing_variants() -> None:
    code = "AB0C-1D2E-FGH3"
    digest = code_digest(KEY, code)
    assert len(digest) == 64 and digest == code_digest(KEY, "ab0c1d2efgh3") == code_digest(KEY, "abOc-lD2E-fgh3")
    assert digest != code_digest(DataKey(bytes(32)), code)  # another data key, another digest
    assert digest != code_digest(KEY, "AB0C-1D2E-FGH4")
    import hashlib

    assert digest != hashlib.sha256(b"AB0C1D2EFGH3").hexdigest()


def test_offer_needs_known_products_and_certified_methods() -> None:
    assert check_offer(PRODUCTS, ["seal-card", "qes-card", "qes-card"], ["on-site", "embassy"]) == (
        ("qes-card", "seal-card"),
        ("embassy", "on-site"),
    )
    cases = [
        ([], ["on-site"], RAErrorKind.MALFORMED),
        (["no-such"], ["on-site"], RAErrorKind.MALFORMED),
        (["qes-card"], [], RAErrorKind.MALFORMED),
        (["qes-card"], ["carrier-pigeon"], RAErrorKind.MALFORMED),
        (["seal-card"], ["embassy"], RAErrorKind.POLICY_VIOLATION),  # certified for no offered product
        (["qes-card"], ["existing-qes"], RAErrorKind.POLICY_VIOLATION),  # shop orders are new orders
    ]
    for products, methods, kind in cases:
        with pytest.raises(RAError) as exc:
            check_offer(PRODUCTS, products, methods)
        assert exc.value.kind is kind, (products, methods)


@pytest.mark.parametrize(
    ("shop", "entered", "product", "method", "codes"),
    [
        (_shop(), True, "qes-card", "on-site", []),
        (_shop(), True, "upc-card", "on-site", ["qtsp.ra.shop.product"]),
        (_shop(), True, "qes-card", "notary", ["qtsp.ra.shop.method"]),
        (_shop(), False, "qes-card", "on-site", ["qtsp.ra.shop.not_entered"]),
        (None, True, "qes-card", "on-site", ["qtsp.ra.shop.not_entered"]),
        (_shop(enabled=False), True, "qes-card", "on-site", ["qtsp.ra.shop.disabled"]),
        (_shop(valid_until=NOW), True, "qes-card", "on-site", ["qtsp.ra.shop.expired"]),
        (_shop(valid_until=NOW + dt.timedelta(seconds=1)), True, "qes-card", "on-site", []),
        (
            _shop(enabled=False),
            True,
            "upc-card",
            "notary",
            ["qtsp.ra.shop.disabled", "qtsp.ra.shop.product", "qtsp.ra.shop.method"],
        ),
    ],
)
def test_order_rules_of_a_shop(
    shop: ShopRec | None, entered: bool, product: str, method: str, codes: list[str]
) -> None:
    found = order_findings(shop, entered=entered, product=PRODUCTS[product], method=IdentMethod(method), now=NOW)
    assert [f.code for f in found] == codes
    assert all(f.message.startswith("shop rule:") for f in found)


def test_sliding_window_limit() -> None:
    window = dt.timedelta(hours=1)
    times = [NOW - dt.timedelta(minutes=m) for m in (50, 40, 30)]
    assert retry_after(NOW, window, [(times, 4)]) is None
    assert retry_after(NOW, window, [(times, 3)]) == 10 * 60  # the oldest of the last 3 leaves in 10 min
    assert retry_after(NOW, window, [(times, 2)]) == 20 * 60
    assert retry_after(NOW, window, [(times, 3), (times[-1:], 1)]) == 30 * 60  # the later of both limits
    assert retry_after(NOW, window, [([NOW - window], 1)]) == 1  # never 0: Retry-After of at least a second
    assert retry_after(NOW, window, [([], 5)]) is None


def test_transport_pins_are_random_digits_and_bound_to_the_card() -> None:
    pins = [new_transport_pin() for _ in range(300)]
    assert all(len(p) == 6 and p.isdigit() for p in pins) and len(set(pins)) > 290
    assert len(new_transport_pin(8)) == 8
    with pytest.raises(ValueError):
        new_transport_pin(3)
    blob = KEY.encrypt(b"123456", pin_aad(1))
    assert KEY.decrypt(blob, pin_aad(1)) == b"123456"
    with pytest.raises(RAError) as exc:
        KEY.decrypt(blob, pin_aad(2))
    assert exc.value.kind is RAErrorKind.CONFLICT


def test_products_configure_transport_pin_length() -> None:
    from ra.products import ProductError, parse_products

    base = (
        'title = "T"\nsubject = "natural"\ndelivery = "card"\nfour_eyes = false\nvalidity_days = 365\n'
        'methods = ["on-site"]\nslots = [{ name = "s", profile = "qes-natural" }]\n'
    )
    assert PRODUCTS["qes-card"].transport_pin_digits == 6
    assert parse_products("[p]\n" + base + "transport_pin_digits = 8\n", PROFILES)["p"].transport_pin_digits == 8  # type: ignore[arg-type]
    for bad in ("5", "13", '"8"', "true"):
        with pytest.raises(ProductError, match="transport_pin_digits"):
            parse_products("[p]\n" + base + f"transport_pin_digits = {bad}\n", PROFILES)  # type: ignore[arg-type]
