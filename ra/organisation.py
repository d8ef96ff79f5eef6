"""Organisations, their authorised signatories, the organisation affiliation confirmation (OZB)
and professional attributes (pure rules).

STANDARDS.md §3.3: EN 319 411-1 REG-6.2.2-09 (affiliation: evidence, and approval by both the
organisation and the person), TS 119 461 COL-8.2.9 (the role and the source of the authorisation
to represent), BIN-8.4.5 (a legal person's application is a wilful act of an authorised
representative), §1.8 (the Admission extension from a chamber confirmation).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from iso3166 import countries_by_alpha2

from ca.findings import Finding, Severity
from ca.profiles.subject import AdmissionInput
from ra.errors import RAError, RAErrorKind
from ra.evidence import PersonData, same_person

__all__ = [
    "OZB_MAX_AGE_DAYS",
    "ChamberConfirmation",
    "OrganisationData",
    "OzbData",
    "SignatoryData",
    "admission_from",
    "organisation_identifier",
    "ozb_findings",
    "signatory_matching",
]

#: COL-8.2.9-05X: the practice statement sets a freshness limit for affiliation statements.
OZB_MAX_AGE_DAYS: Final = 90

_REGISTER_NUMBER_RE: Final = re.compile(r"^(HRA|HRB|GnR|PR|VR|GsR)\s?[0-9]{1,6}(\s?[A-Z]{1,2})?\Z")
_VAT_RE: Final = re.compile(r"^[A-Z0-9]{2,14}\Z")
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}\Z")


@dataclass(frozen=True, slots=True)
class SignatoryData:
    given_names: str
    surname: str
    date_of_birth: dt.date
    role: str
    """E.g. Geschäftsführer, Vorstand, Prokurist (COL-8.2.2.3-03)."""

    @property
    def person(self) -> PersonData:
        return PersonData(self.given_names, self.surname, self.date_of_birth)


@dataclass(frozen=True, slots=True)
class OrganisationData:
    name: str
    legal_form: str
    country: str
    register_court: str | None
    register_number: str | None
    vat_number: str | None


def organisation_identifier(org: OrganisationData) -> str:
    """EN 319 412-1 §5.1.4 organizationIdentifier: ``NTR<cc>-<register number>`` from the trade
    register (court and number), else ``VAT<cc>-<number>``.

    The register court is recorded with the organisation but is not part of the identifier (the
    NTR subdivision form is refused by the CA's rules).

    :raises RAError: MALFORMED when neither a register entry nor a VAT number is usable.
    """
    if org.country not in countries_by_alpha2:
        raise RAError(RAErrorKind.MALFORMED, f"organisation country {org.country[:10]!r} is not ISO 3166-1 alpha-2")
    if org.register_number is not None:
        if not org.register_court:
            raise RAError(RAErrorKind.MALFORMED, "a register number needs its register court")
        if not _REGISTER_NUMBER_RE.match(org.register_number):
            raise RAError(
                RAErrorKind.MALFORMED,
                f"register number {org.register_number[:30]!r} is not of the form HRB 12345 "
                "(HRA, HRB, GnR, PR, VR, GsR)",
            )
        return f"NTR{org.country}-{org.register_number.replace(' ', '')}"
    if org.vat_number is not None:
        vat = org.vat_number.replace(" ", "")
        if vat.startswith(org.country):
            vat = vat[len(org.country) :]
        if not _VAT_RE.match(vat):
            raise RAError(RAErrorKind.MALFORMED, f"VAT number {org.vat_number[:30]!r} is malformed")
        return f"VAT{org.country}-{vat}"
    raise RAError(RAErrorKind.MALFORMED, "an organisation needs a register court and number, or a VAT number")


def signatory_matching(person: PersonData, signatories: tuple[SignatoryData, ...]) -> SignatoryData | None:
    return next((s for s in signatories if same_person(s.person, person)), None)


@dataclass(frozen=True, slots=True)
class OzbData:
    """An organisation affiliation confirmation as received."""

    signatory: SignatoryData | None
    """The authorised signatory who signed it (None if the signer is not one of them)."""
    signed_by: str
    signed_on: dt.date
    document_sha256: str
    organisation_agrees: bool
    person_agrees: bool


def ozb_findings(ozb: OzbData, *, now: dt.datetime) -> list[Finding]:
    out: list[Finding] = []

    def err(code: str, message: str) -> None:
        out.append(Finding(Severity.ERROR, f"qtsp.ra.ozb.{code}", message))

    if ozb.signatory is None:
        err(
            "not_signatory",
            f"REG-6.2.2-09: the OZB is signed by {ozb.signed_by}, "
            "who is not an authorised signatory of the organisation",
        )
    today = now.astimezone(dt.UTC).date()
    if ozb.signed_on > today:
        err("future", "REG-6.2.2-09: the OZB's signing date lies in the future")
    elif (today - ozb.signed_on).days > OZB_MAX_AGE_DAYS:
        err("stale", f"COL-8.2.9-05X: the OZB is older than {OZB_MAX_AGE_DAYS} days")
    if not _SHA256_RE.match(ozb.document_sha256):
        err("digest", "REG-6.2.2-18: the OZB document digest must be a SHA-256 in lowercase hex")
    if not ozb.organisation_agrees:
        err("organisation_consent", "REG-6.2.2-09: the organisation has not agreed to the affiliation")
    if not ozb.person_agrees:
        err("person_consent", "REG-6.2.2-09: the person has not agreed to the affiliation")
    return out


@dataclass(frozen=True, slots=True)
class ChamberConfirmation:
    """A professional chamber's confirmation (Kammerbestätigung): chamber, registration number, profession."""

    chamber: str
    registration_number: str
    profession: str
    profession_oid: str | None
    confirmed_on: dt.date


def admission_from(confirmation: ChamberConfirmation) -> AdmissionInput:
    """The Common PKI Admission extension certifying the profession (STANDARDS.md §1.8)."""
    return AdmissionInput(
        authority=confirmation.chamber,
        profession=confirmation.profession,
        professionOid=confirmation.profession_oid,
        registrationNumber=confirmation.registration_number,
    )
