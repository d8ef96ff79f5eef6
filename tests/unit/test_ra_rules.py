"""Pure RA rules: product validation, the method matrix, state machines, copy detection,
organisation identifiers, the data key and TOTP."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest

from ra.credentials import DataKey, totp_step
from ra.errors import RAError, RAErrorKind
from ra.evidence import check_copy
from ra.organisation import OrganisationData, organisation_identifier
from ra.products import IdentMethod, OrderKind, ProductError, check_method, load_products, parse_products
from ra.roles import Role
from ra.workflow import CardEvent, CardState, OrderEvent, OrderState, card_transition, order_transition

PROFILES = {"qes-natural": "natural", "qseal-legal": "legal", "upc-auth": "natural"}
BASE = (
    'title = "T"\nsubject = "natural"\ndelivery = "card"\nfour_eyes = false\nvalidity_days = 365\n'
    'methods = ["on-site"]\nslots = [{ name = "s", profile = "qes-natural" }]\n'
)


def test_builtin_products_load() -> None:
    products = load_products(PROFILES)  # type: ignore[arg-type]
    assert {"qes-card", "qes-professional-card", "upc-card", "seal-card", "remote-seal", "advanced-personal-id"} <= set(
        products
    )
    assert [s.profile for s in products["upc-card"].slots] == ["qes-natural", "upc-auth"]
    assert products["remote-seal"].delivery == "remote"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("validity_days = 1200\n", "3 years"),
        ('methods = ["telepathy"]\n', "unknown identification method"),
        ('slots = [{ name = "s", profile = "qseal-legal" }]\n', "legal persons"),
        ('slots = [{ name = "s", profile = "nope" }]\n', "unknown profile"),
        ("colour = 1\n", "unknown key"),
        ('delivery = "remote"\n', "seals"),
    ],
)
def test_product_validation_refuses(patch: str, message: str) -> None:
    key = patch.split(" ", maxsplit=1)[0]
    text = "".join(line + "\n" for line in BASE.splitlines() if not line.startswith(key + " ")) + patch
    with pytest.raises(ProductError, match=message):
        parse_products("[p]\n" + text, PROFILES)  # type: ignore[arg-type]


def test_method_matrix() -> None:
    products = load_products(PROFILES)  # type: ignore[arg-type]
    check_method(products["qes-card"], IdentMethod.EMBASSY, OrderKind.NEW)
    with pytest.raises(RAError, match=r"BotschaftsIdent .* not certified for product Qualified seal card"):
        check_method(products["seal-card"], IdentMethod.EMBASSY, OrderKind.NEW)
    with pytest.raises(RAError, match="follow-up and renewal"):
        check_method(products["qes-card"], IdentMethod.EXISTING_QES, OrderKind.NEW)
    check_method(products["qes-card"], IdentMethod.EXISTING_QES, OrderKind.RENEWAL)


def test_order_state_machine() -> None:
    assert order_transition(OrderState.OPEN, OrderEvent.HOLD, Role.RA_OFFICER) is OrderState.WAITING
    with pytest.raises(RAError) as e:
        order_transition(OrderState.DONE, OrderEvent.CANCEL, Role.APPLICANT)
    assert e.value.kind is RAErrorKind.ILLEGAL_TRANSITION
    with pytest.raises(RAError) as e:
        order_transition(OrderState.OPEN, OrderEvent.APPROVE, Role.APPLICANT)
    assert e.value.kind is RAErrorKind.FORBIDDEN
    # Terminal states accept nothing.
    for state in (OrderState.DONE, OrderState.REJECTED, OrderState.CANCELLED):
        for event in OrderEvent:
            with pytest.raises(RAError):
                order_transition(state, event, Role.RA_OFFICER)


def test_card_state_machine_revocation_is_final() -> None:
    s = card_transition(CardState.NOT_ACTIVATED, CardEvent.ACTIVATE, Role.APPLICANT)
    s = card_transition(s, CardEvent.REQUEST_REVOCATION, Role.REVOCATION_OFFICER)
    s = card_transition(s, CardEvent.REVOKED, Role.REVOCATION_OFFICER)
    assert s is CardState.REVOKED
    for event in CardEvent:
        with pytest.raises(RAError):
            card_transition(CardState.REVOKED, event, Role.SYSTEM)
    with pytest.raises(RAError):
        card_transition(CardState.EXPIRED, CardEvent.REQUEST_REVOCATION, Role.REVOCATION_OFFICER)


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n", "application/pdf"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20, "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png"),
        (b"BM" + b"\x00" * 60, "image/bmp"),
        (b"II*\x00" + b"\x00" * 20, "image/tiff"),
        (b"MM\x00*" + b"\x00" * 20, "image/tiff"),
    ],
)
def test_copy_accepted_by_content(data: bytes, media_type: str) -> None:
    assert check_copy(data).media_type == media_type


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", RAErrorKind.MALFORMED),
        (b"MZ" + b"\x00" * 60, RAErrorKind.UNSUPPORTED_MEDIA),
        (b"PK\x03\x04" + b"\x00" * 40, RAErrorKind.UNSUPPORTED_MEDIA),
        (b"GIF89a" + b"\x00" * 20, RAErrorKind.UNSUPPORTED_MEDIA),
        (b"plain text, named id.pdf", RAErrorKind.UNSUPPORTED_MEDIA),
        (b"%PDF" + b"\x00" * (2 * 1024 * 1024), RAErrorKind.TOO_LARGE),
    ],
)
def test_copy_refused(data: bytes, kind: RAErrorKind) -> None:
    with pytest.raises(RAError) as e:
        check_copy(data)
    assert e.value.kind is kind


def test_organisation_identifier() -> None:
    org = OrganisationData("X GmbH", "GmbH", "DE", "AG Berlin", "HRB 12345 B", None)
    assert organisation_identifier(org) == "NTRDE-HRB12345B"
    assert organisation_identifier(OrganisationData("X", "GmbH", "DE", None, None, "DE123456789")) == "VATDE-123456789"
    for bad in (
        OrganisationData("X", "GmbH", "DE", None, "HRB 1", None),
        OrganisationData("X", "GmbH", "DE", "AG", "12345", None),
        OrganisationData("X", "GmbH", "XX", None, None, "1"),
        OrganisationData("X", "GmbH", "DE", None, None, None),
    ):
        with pytest.raises(RAError):
            organisation_identifier(bad)


def test_data_key_authenticates_and_binds_context() -> None:
    key = DataKey(b"k" * 32)
    blob = key.encrypt(b"secret", b"ctx")
    assert key.decrypt(blob, b"ctx") == b"secret" and b"secret" not in blob
    with pytest.raises(RAError):
        key.decrypt(blob, b"other")
    with pytest.raises(RAError):
        key.decrypt(blob[:-1] + bytes([blob[-1] ^ 1]), b"ctx")
    with pytest.raises(RAError):
        DataKey(b"x" * 32).decrypt(blob, b"ctx")
    assert "k" * 8 not in repr(key)


def test_totp_step() -> None:
    secret = pyotp.random_base32()
    now = dt.datetime.now(dt.UTC)
    step = totp_step(secret, pyotp.TOTP(secret).at(now), now)
    assert step == pyotp.TOTP(secret).timecode(now)
    assert totp_step(secret, pyotp.TOTP(secret).at(now - dt.timedelta(minutes=5)), now) is None
    assert totp_step(secret, "12ab56", now) is None
