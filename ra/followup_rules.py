"""Pure rules of follow-up orders (a new card for the holder of a valid card), kept apart from the
database so that they are unit-tested on their own:

* the canonical request the holder signs with the current card (:func:`canonical_request`);
* order passwords: CSPRNG, human-typable, normalised on input;
* how many follow-ups in a row may go without new identification (EN 319 411-1 REG-6.3.1-00E: the
  CPS states how often a certificate is issued again without new identity validation; D-Trust:
  two follow-up cards, the third needs ID again) and the chain that counts (REG-6.2.2-02 NOTE 2);
* a changed name or certificate attribute needs a new order (REG-6.3.7-01B, REG-6.3.8-02).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ca.audit.chain import JSONValue
from ca.profiles.oids import QC_IDENT_EIDAS2_B
from ra.credentials import new_letter_secret

__all__ = [
    "AUTH_ORDER_PASSWORD",
    "AUTH_QUALIFIED_SIGNATURE",
    "QC_IDENT_EXISTING_QC",
    "ChainLink",
    "FollowUpSettings",
    "canonical_request",
    "consecutive_without_identification",
    "expected_subject",
    "new_order_password",
    "normalise_order_password",
    "subject_changes",
]

AUTH_QUALIFIED_SIGNATURE: Final = "qualified-signature"
AUTH_ORDER_PASSWORD: Final = "order-password"  # noqa: S105 (a method name)
REQUEST_PURPOSE: Final = "qtsp-follow-up-order/1"

#: EN 319 412-5 V2.5.1 §4.3.5 (STANDARDS.md §1.1 OID table, semantics in §1.5): id-etsi-qct-eIDAS2-b, a QC issued by
#: identifying the subject with an existing qualified certificate (amended eIDAS Art 24(1a)(b)).
QC_IDENT_EXISTING_QC: Final = QC_IDENT_EIDAS2_B.dotted_string


@dataclass(frozen=True, slots=True)
class FollowUpSettings:
    """``[ra] followups_without_identification`` and ``followup_qc_ident_method`` plus fixed limits."""

    without_identification: int = 2
    """Follow-ups in a row that need no new identification; the next one needs it."""
    qc_ident_method: bool = False
    """Certificates of follow-ups authenticated by the current qualified certificate carry
    QcIdentMethod eIDAS2-b (EN 319 412-5 V2.5.1 §4.3.5)."""
    challenge_validity: dt.timedelta = dt.timedelta(minutes=10)
    password_validity: dt.timedelta = dt.timedelta(days=30)
    password_window: dt.timedelta = dt.timedelta(hours=1)
    password_failures_per_card: int = 5


def canonical_request(card_id: int, product: str, nonce: str, method: str | None) -> bytes:
    """The exact bytes the holder signs: compact JSON, keys sorted, ASCII only.

    ``method`` is the identification method when the follow-up needs a new identification, else None.
    """
    body: dict[str, JSONValue] = {
        "card_id": card_id,
        "method": method,
        "nonce": nonce,
        "product": product,
        "purpose": REQUEST_PURPOSE,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def new_order_password() -> str:
    """16 characters that cannot be confused when typed from a letter (no 0/O, 1/I/L), about 79
    bits, in groups of four (:func:`ra.credentials.new_letter_secret`)."""
    return new_letter_secret()


def normalise_order_password(text: str) -> str:
    """Upper case, without blanks and hyphens (as typed from the letter); the hash is over this form."""
    return "".join(c for c in text.upper() if c not in " -\t")


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One order on the way back from the current card: its kind and whether identity evidence was
    recorded on it (a fresh identification)."""

    kind: str
    identified: bool


def consecutive_without_identification(chain: Sequence[ChainLink]) -> int:
    """How many orders in a row, starting with the current card's own order and going back through
    ``parent_card_id``, were issued without fresh identification (a 'new' order always had one)."""
    count = 0
    for link in chain:
        if link.kind == "new" or link.identified:
            break
        count += 1
    return count


_NAME_KEYS: Final = ("givenName", "surname", "commonName")
_ORG_KEYS: Final = ("organizationName", "organizationIdentifier")


def expected_subject(
    current: Mapping[str, JSONValue],
    *,
    subject_kind: str,
    given_names: str,
    surname: str,
    organisation: tuple[str, str, str] | None,
) -> dict[str, JSONValue]:
    """The subject the current records would give, built on the current certificate's subject:
    names from the person record (natural persons), name, identifier and country from the
    organisation record where the certificate names an organisation."""
    out = dict(current)
    if subject_kind == "natural":
        out["givenName"] = given_names
        out["surname"] = surname
        out["commonName"] = f"{given_names} {surname}"[:64]
    if organisation is not None and any(k in current for k in _ORG_KEYS):
        name, identifier, country = organisation
        out["organizationName"] = name
        out["organizationIdentifier"] = identifier
        if subject_kind == "legal":
            out["countryName"] = country
    return out


def subject_changes(current: Mapping[str, JSONValue], expected: Mapping[str, JSONValue]) -> list[str]:
    """The attributes that differ (sorted); empty when the follow-up may keep the subject."""
    return sorted(k for k in set(current) | set(expected) if current.get(k) != expected.get(k))
