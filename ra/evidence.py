"""Identity evidence rules (pure): the document, its validity, the match with the subject, who
verified it and how; and the optional copy, recognised by content.

Every rule returns findings (``ca.findings``) whose message names the rule it enforces.  The
checklist follows STANDARDS.md §3.4 (TS 119 461 VAL-8.3.x, COL-8.2.3) and §3.8 (EN 319 411-1
REG-6.2.2-18, REG-6.4.5-04).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import puremagic
from iso3166 import countries_by_alpha2

if TYPE_CHECKING:
    from ra.records import IdentityRec

from ca.findings import Finding, Severity
from ra.errors import RAError, RAErrorKind
from ra.products import IdentMethod

__all__ = [
    "MAX_COPY_BYTES",
    "MIN_DAYS_VALID_AFTER_SUBMISSION",
    "MIN_SECURITY_FEATURES",
    "REDACTABLE_FIELDS",
    "CopyCheck",
    "DocumentType",
    "IdentityEvidence",
    "PersonData",
    "check_copy",
    "identity_findings",
    "normalise_name",
    "same_person",
]

#: Seed (D-Trust): "valid for at least four weeks from the point of submission".
MIN_DAYS_VALID_AFTER_SUBMISSION: Final = 28
#: TS 119 461 VAL-8.3.3-07X: at least three distinct security features reliably verified.
MIN_SECURITY_FEATURES: Final = 3
#: Seed (DigiSign): copies of at most 2 MB.
MAX_COPY_BYTES: Final = 2 * 1024 * 1024
#: Seed (TeleSec): the applicant may black out eye colour, height and the card access number.
REDACTABLE_FIELDS: Final = frozenset({"eye-colour", "height", "card-access-number"})

_DOC_NUMBER_RE: Final = re.compile(r"^[A-Z0-9]{5,20}\Z")


class DocumentType(enum.StrEnum):
    ID_CARD = "id-card"
    PASSPORT = "passport"
    RESIDENCE_PERMIT = "residence-permit"
    """The electronic residence permit (eAT)."""

    @property
    def identifier_type(self) -> str | None:
        """EN 319 412-1 §5.1.3 identity type for the subject's serialNumber (none for a residence permit)."""
        return {DocumentType.ID_CARD: "IDC", DocumentType.PASSPORT: "PAS"}.get(self)


#: PostIdent's online ID function exists only on documents with an eID chip (nPA, eAT).
_EID_DOCUMENTS: Final = frozenset({DocumentType.ID_CARD, DocumentType.RESIDENCE_PERMIT})


@dataclass(frozen=True, slots=True)
class PersonData:
    """The natural person an order is for (names as on the identity document)."""

    given_names: str
    surname: str
    date_of_birth: dt.date


def normalise_name(value: str) -> str:
    """Compatibility-normalised, case-folded, single-spaced (the practice statement's matching rule;
    transliteration of other scripts is not attempted: TS 119 461 VAL-8.3.1-03X)."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def same_person(a: PersonData, b: PersonData) -> bool:
    return (
        normalise_name(a.given_names) == normalise_name(b.given_names)
        and normalise_name(a.surname) == normalise_name(b.surname)
        and a.date_of_birth == b.date_of_birth
    )


@dataclass(frozen=True, slots=True)
class IdentityEvidence:
    """One identity document as verified (REG-6.4.5-04 a, b, e, f).

    :ivar verified_by: who verified it (the RA officer, the PostIdent branch, the notary, ...).
    :ivar verified_place: where.
    :ivar verified_at: when (timezone-aware UTC).
    :ivar security_features: the security features checked (VAL-8.3.3-07X).
    """

    document_type: DocumentType
    document_number: str
    issuing_state: str
    expires_on: dt.date
    given_names: str
    surname: str
    date_of_birth: dt.date
    verified_by: str
    verified_place: str
    verified_at: dt.datetime
    security_features: tuple[str, ...]

    @classmethod
    def from_record(cls, rec: IdentityRec) -> IdentityEvidence:
        """The evidence as recorded on an order (``ra_identity_evidence``)."""
        return cls(
            document_type=DocumentType(rec.document_type),
            document_number=rec.document_number,
            issuing_state=rec.issuing_state,
            expires_on=rec.expires_on,
            given_names=rec.given_names,
            surname=rec.surname,
            date_of_birth=rec.date_of_birth,
            verified_by=rec.verified_by,
            verified_place=rec.verified_place,
            verified_at=rec.verified_at,
            security_features=tuple(json.loads(rec.security_features)),
        )


def _err(code: str, message: str) -> Finding:
    return Finding(Severity.ERROR, f"qtsp.ra.evidence.{code}", message)


def identity_findings(
    evidence: IdentityEvidence,
    subject: PersonData,
    *,
    method: IdentMethod,
    submitted_at: dt.datetime,
    now: dt.datetime,
) -> list[Finding]:
    """Check one identity document against the order's subject; the empty list means accepted."""
    out: list[Finding] = []
    if not _DOC_NUMBER_RE.match(evidence.document_number):
        out.append(
            _err(
                "document_number",
                "REG-6.2.2-18: the document number must be 5-20 capital letters or digits "
                f"(got {evidence.document_number[:30]!r})",
            )
        )
    if evidence.issuing_state not in countries_by_alpha2:
        out.append(
            _err(
                "issuing_state",
                f"VAL-8.3.3-10: issuing state {evidence.issuing_state[:10]!r} is not an ISO 3166-1 alpha-2 code",
            )
        )
    earliest = submitted_at.astimezone(dt.UTC).date() + dt.timedelta(days=MIN_DAYS_VALID_AFTER_SUBMISSION)
    if evidence.expires_on < earliest:
        out.append(
            _err(
                "expiry",
                f"VAL-8.3.1-07: the document expires on {evidence.expires_on.isoformat()}; it must still be valid "
                f"{MIN_DAYS_VALID_AFTER_SUBMISSION} days after submission ({earliest.isoformat()})",
            )
        )
    if normalise_name(evidence.given_names) != normalise_name(subject.given_names) or normalise_name(
        evidence.surname
    ) != normalise_name(subject.surname):
        out.append(
            _err(
                "name_mismatch",
                "VAL-8.3.1-01X: the names on the document do not match the subject "
                f"({evidence.given_names} {evidence.surname} vs {subject.given_names} {subject.surname})",
            )
        )
    if evidence.date_of_birth != subject.date_of_birth:
        out.append(_err("birth_date_mismatch", "VAL-8.3.1-01X: the date of birth does not match the subject"))
    if not evidence.verified_by.strip() or not evidence.verified_place.strip():
        out.append(_err("verifier", "REG-6.4.5-04 (e): who verified the document, and where, must be recorded"))
    if evidence.verified_at > now:
        out.append(_err("verified_in_future", "REG-6.4.5-04: the verification time lies in the future"))
    features = {normalise_name(f) for f in evidence.security_features if f.strip()}
    if len(features) < MIN_SECURITY_FEATURES:
        out.append(
            _err(
                "security_features",
                f"VAL-8.3.3-07X: at least {MIN_SECURITY_FEATURES} distinct security features must be checked "
                f"(got {len(features)})",
            )
        )
    if method is IdentMethod.POSTIDENT_EID and evidence.document_type not in _EID_DOCUMENTS:
        out.append(
            _err(
                "no_eid",
                f"COL-8.2.4: {method.title} needs a document with the online ID function "
                f"(ID card or electronic residence permit), not a {evidence.document_type.value}",
            )
        )
    return out


# ----------------------------------------------------------------------------------------------
# Copies


#: Accepted copy formats (seed: .pdf, .jpeg, .png, .bmp, .tif/.tiff), by the extension puremagic reports.
_MEDIA_TYPES: Final = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jfif": "image/jpeg",
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


@dataclass(frozen=True, slots=True)
class CopyCheck:
    media_type: str
    size: int
    sha256: str
    redacted_fields: tuple[str, ...]

    @property
    def redacted(self) -> bool:
        return bool(self.redacted_fields)


def _detect(data: bytes) -> str | None:
    """The accepted media type the content starts with, or None (never the file name)."""
    try:
        matches = puremagic.magic_string(data)
    except (puremagic.PureError, ValueError):
        return None
    at_start = [m for m in matches if m.offset == 0]
    if not at_start:
        return None
    best = max(m.confidence for m in at_start)
    for m in at_start:
        if m.confidence == best and m.extension.lower() in _MEDIA_TYPES:
            return _MEDIA_TYPES[m.extension.lower()]
    return None


def check_copy(data: bytes, redacted_fields: tuple[str, ...] = ()) -> CopyCheck:
    """Accept a copy of an identity document: PDF, JPEG, PNG, BMP or TIFF by content, at most 2 MB.

    :raises RAError: TOO_LARGE, UNSUPPORTED_MEDIA or MALFORMED with a clear message.
    """
    if not data:
        raise RAError(RAErrorKind.MALFORMED, "the copy is empty")
    if len(data) > MAX_COPY_BYTES:
        raise RAError(
            RAErrorKind.TOO_LARGE, f"the copy has {len(data)} bytes; at most {MAX_COPY_BYTES} (2 MB) are accepted"
        )
    media_type = _detect(data)
    if media_type is None:
        raise RAError(
            RAErrorKind.UNSUPPORTED_MEDIA,
            "the copy is not a PDF, JPEG, PNG, BMP or TIFF file (recognised by its content, not its name)",
        )
    unknown = sorted(set(redacted_fields) - REDACTABLE_FIELDS)
    if unknown:
        raise RAError(
            RAErrorKind.MALFORMED,
            f"only {', '.join(sorted(REDACTABLE_FIELDS))} may be blacked out (not {', '.join(unknown)})",
        )
    return CopyCheck(
        media_type=media_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        redacted_fields=tuple(sorted(set(redacted_fields))),
    )
