"""Subject distinguished-name rules for natural persons (EN 319 412-2) and legal persons (EN 319 412-3).

Every rule is pure: it takes a :class:`SubjectInput` and returns :class:`ca.findings.Finding` objects
whose message starts with the clause it enforces.  Identifier syntax follows EN 319 412-1 V1.6.1 §5.1.3
(natural persons, ``serialNumber``) and §5.1.4 (legal persons, ``organizationIdentifier``), aligned
with what pkilint 0.13.3 checks (``pkilint/etsi/en_319_412_1.py``, ``pkilint/common/organization_id.py``).
Where V1.6.1 allows something pkilint 0.13.3 does not know, the rule says so in its finding.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Final, Literal

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from iso3166 import countries_by_alpha2

from ca.asn1 import is_oid, is_printable_string
from ca.findings import Finding, Severity
from ca.profiles.oids import ORGANIZATION_IDENTIFIER

__all__ = [
    "LEGAL_IDENTIFIER_TYPES",
    "NATURAL_IDENTIFIER_TYPES",
    "RULES_BY_KIND",
    "AdmissionInput",
    "SubjectError",
    "SubjectInput",
    "admission_rules",
    "legal_person_rules",
    "legal_semantics_applies",
    "lei_check_digits_valid",
    "natural_person_rules",
    "natural_semantics_applies",
]

#: EN 319 412-1 V1.6.1 §5.1.3 identity types for natural persons (TAX is deprecated, NAT-5.1.3-04).
NATURAL_IDENTIFIER_TYPES: Final = frozenset({"PAS", "IDC", "PNO", "TAX", "TIN", "EID"})
#: EN 319 412-1 V1.6.1 §5.1.4 identity types for legal persons.
LEGAL_IDENTIFIER_TYPES: Final = frozenset({"VAT", "NTR", "PSD", "LEI", "EOR", "EXC"})

_ISO3166: Final = frozenset(countries_by_alpha2)
_EU: Final = "EU"
# STANDARDS.md §1.2 (and pkilint's TRANSNATIONAL_COUNTRY_CODES): ISO 3166-1 plus these in identifiers.
_TRANSNATIONAL: Final = frozenset({"EU", "EZ", "SU", "UN"})
_PKILINT: Final = "pkilint 0.13.3"
# EN 319 412-1 §5.1.3: <3-char type><2-char country>-<identifier>; "XX:" is a national scheme.
_NATURAL_ID_RE: Final = re.compile(r"^(?P<type>[A-Z]{2}[A-Z:])(?P<country>[A-Z]{2})-(?P<id>.+)\Z")
# EN 319 412-1 §5.1.4: as above, plus LEG-5.1.4-08's optional "+<ISO 3166-2 subdivision>" (NTR only).
_LEGAL_ID_RE: Final = re.compile(
    r"^(?P<type>[A-Z]{2}[A-Z:])(?P<country>[A-Z]{2})(?:\+(?P<sp>[A-Za-z0-9]{1,3}))?-(?P<id>.+)\Z"
)
# ISO 17442: 18 alphanumerics + 2 check digits (ISO 7064 MOD 97-10).
_LEI_RE: Final = re.compile(r"^[0-9A-Z]{18}[0-9]{2}\Z")
# X.680 §41.4 PrintableString alphabet.
# RFC 5322 §3.4.1 addr-spec, dot-atom forms only, ASCII only (no SMTPUTF8).
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LOCAL_RE: Final = re.compile(rf"^{_ATEXT}(?:\.{_ATEXT})*\Z")
_DNS_LABEL_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_UB_SERIAL_NUMBER: Final = 64  # RFC 5280 Appendix A ub-serial-number
_UB_PROFESSION: Final = 128  # Common PKI ProfessionInfo SIZE(1..128)


class SubjectError(ValueError):
    """The subject input is malformed (one-line message naming the key)."""


_JSON_TYPE_NAMES: Final[dict[type, str]] = {
    bool: "boolean",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _check_text(where: str, value: object) -> None:
    """Value hygiene shared by both input paths: a non-empty str without control chars or outer blanks."""
    if not isinstance(value, str):
        raise SubjectError(f"{where}: expected a string, got {_json_type(value)}")
    if value == "":
        raise SubjectError(f"{where}: must not be empty")
    for ch in value:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            raise SubjectError(f"{where}: control or format character U+{ord(ch):04X} is not allowed")
    if value != value.strip():
        raise SubjectError(f"{where}: leading or trailing whitespace is not allowed")


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionInput:
    """A profession admission to certify (Common PKI Admission extension, STANDARDS.md §1.8).

    :ivar authority: the admitting body, e.g. ``"Patentanwaltskammer"``.
    :ivar profession: the profession text, e.g. ``"Patentanwalt"``.
    :ivar professionOid: dotted profession OID, e.g. ``"1.3.36.8.3.11.1.19"``.
    :ivar registrationNumber: the registration number at the authority.
    """

    authority: str | None = None
    profession: str
    professionOid: str | None = None
    registrationNumber: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None or f.name == "profession":
                _check_text(f"subject.admission.{f.name}", value)

    @classmethod
    def from_json_obj(cls, obj: object) -> AdmissionInput:
        """Build from the ``admission`` JSON object.

        Keys: authority, profession (required), professionOid, registrationNumber.

        :raises SubjectError: not an object, an unknown key, a missing profession, or a bad value.
        """
        if not isinstance(obj, Mapping):
            raise SubjectError(f"subject.admission: expected an object, got {_json_type(obj)}")
        _reject_unknown_keys("subject.admission", obj, _ADMISSION_KEYS)
        if "profession" not in obj:
            raise SubjectError("subject.admission.profession: missing")
        values: dict[str, str] = {}
        for key in _ADMISSION_KEYS:
            if key in obj:
                value = obj[key]
                _check_text(f"subject.admission.{key}", value)
                assert isinstance(value, str)
                values[key] = value
        return cls(**values)


_ADMISSION_KEYS: Final = ("authority", "profession", "professionOid", "registrationNumber")
_SUBJECT_STR_KEYS: Final = (
    "countryName",
    "commonName",
    "givenName",
    "surname",
    "pseudonym",
    "serialNumber",
    "organizationName",
    "organizationIdentifier",
    "email",
)
_SUBJECT_KEYS: Final = (*_SUBJECT_STR_KEYS, "admission")


def _reject_unknown_keys(where: str, keys: Iterable[object], allowed: tuple[str, ...]) -> None:
    # Keys are echoed escaped (ASCII JSON, at most 60 characters): the message stays one line.
    unknown = sorted(json.dumps(k[:60]) if isinstance(k, str) else repr(k)[:60] for k in keys if k not in allowed)
    if unknown:
        raise SubjectError(f"{where}: unknown key {', '.join(unknown)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SubjectInput:
    """The subject a request asks for, before any rule has run.

    Attribute names are the JSON keys (and the X.520 attribute names).  Construction checks value
    hygiene only (see :meth:`from_json_obj`); the profile rules are :func:`natural_person_rules` and
    :func:`legal_person_rules`.

    :ivar countryName: ISO 3166-1 alpha-2 code (X.520 countryName).
    :ivar commonName: X.520 commonName.
    :ivar givenName: X.520 givenName (natural persons).
    :ivar surname: X.520 surname (natural persons).
    :ivar pseudonym: X.520 pseudonym (natural persons, instead of givenName/surname).
    :ivar serialNumber: EN 319 412-1 §5.1.3 identifier, e.g. ``IDCDE-T22000129``.
    :ivar organizationName: X.520 organizationName.
    :ivar organizationIdentifier: EN 319 412-1 §5.1.4 identifier, e.g. ``VATDE-123456789``.
    :ivar email: not part of the DN; it goes into subjectAltName rfc822Name (RFC 5280 §4.2.1.6).
    :ivar admission: the Common PKI Admission extension (not a DN attribute).
    """

    countryName: str | None = None
    commonName: str | None = None
    givenName: str | None = None
    surname: str | None = None
    pseudonym: str | None = None
    serialNumber: str | None = None
    organizationName: str | None = None
    organizationIdentifier: str | None = None
    email: str | None = None
    admission: AdmissionInput | None = None

    def __post_init__(self) -> None:
        for key in _SUBJECT_STR_KEYS:
            value = getattr(self, key)
            if value is not None:
                _check_text(f"subject.{key}", value)
        if self.admission is not None and not isinstance(self.admission, AdmissionInput):
            raise SubjectError(f"subject.admission: expected AdmissionInput, got {type(self.admission).__name__}")

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, object]) -> SubjectInput:
        """Build from a decoded JSON object with exactly the keys of this class (all optional).

        :raises SubjectError: one line naming an unknown key, a non-string value (null included: omit
            the key instead), an empty string, or a value with control characters or outer whitespace.
        """
        if not isinstance(obj, Mapping):
            raise SubjectError(f"subject: expected an object, got {_json_type(obj)}")
        _reject_unknown_keys("subject", obj, _SUBJECT_KEYS)
        values: dict[str, str] = {}
        for key in _SUBJECT_STR_KEYS:
            if key in obj:
                value = obj[key]
                _check_text(f"subject.{key}", value)
                assert isinstance(value, str)
                values[key] = value
        admission = AdmissionInput.from_json_obj(obj["admission"]) if "admission" in obj else None
        return cls(**values, admission=admission)

    def to_x509_name(self, kind: Literal["natural", "legal"]) -> x509.Name:
        """The subject DN, one attribute per RDN, in the order C, O, organizationIdentifier, SN, GN,
        pseudonym, serialNumber, CN (as in common EU qualified certificates; pkilint checks no order).

        String types: countryName and serialNumber PrintableString (X.520 / RFC 5280 Appendix A);
        organizationIdentifier PrintableString when its characters allow, else UTF8String (X.520 makes
        it a DirectoryString; pkilint accepts either); everything else UTF8String (RFC 5280 §4.1.2.6).
        Run :func:`natural_person_rules` / :func:`legal_person_rules` first; this only encodes.

        :raises SubjectError: a legal-person name with givenName/surname/pseudonym, an empty name, or a
            countryName/serialNumber that cannot be a PrintableString.
        """
        if kind not in ("natural", "legal"):
            raise SubjectError(f'subject: unknown kind "{kind}"')
        if kind == "legal":
            for key in ("givenName", "surname", "pseudonym"):
                if getattr(self, key) is not None:
                    raise SubjectError(f"subject.{key}: not allowed in a legal-person name")
        utf8, printable = _ASN1Type.UTF8String, _ASN1Type.PrintableString
        attrs: list[x509.NameAttribute[str]] = []

        def add(oid: x509.ObjectIdentifier, key: str, value: str | None, asn1_type: _ASN1Type) -> None:
            if value is None:
                return
            if asn1_type is printable and not is_printable_string(value):
                raise SubjectError(f"subject.{key}: not encodable as PrintableString")
            attrs.append(x509.NameAttribute(oid, value, _type=asn1_type))

        if self.countryName is not None and len(self.countryName) != 2:
            raise SubjectError("subject.countryName: must be 2 characters")
        add(NameOID.COUNTRY_NAME, "countryName", self.countryName, printable)
        add(NameOID.ORGANIZATION_NAME, "organizationName", self.organizationName, utf8)
        org_id = self.organizationIdentifier
        add(
            ORGANIZATION_IDENTIFIER,
            "organizationIdentifier",
            org_id,
            printable if org_id is not None and is_printable_string(org_id) else utf8,
        )
        add(NameOID.SURNAME, "surname", self.surname, utf8)
        add(NameOID.GIVEN_NAME, "givenName", self.givenName, utf8)
        add(NameOID.PSEUDONYM, "pseudonym", self.pseudonym, utf8)
        add(NameOID.SERIAL_NUMBER, "serialNumber", self.serialNumber, printable)
        add(NameOID.COMMON_NAME, "commonName", self.commonName, utf8)
        if not attrs:
            raise SubjectError("subject: no DN attribute given")
        return x509.Name([x509.RelativeDistinguishedName([a]) for a in attrs])


# --- helpers ---------------------------------------------------------------------------------------


def _err(code: str, message: str) -> Finding:
    return Finding(Severity.ERROR, code, message)


def _warn(code: str, message: str) -> Finding:
    return Finding(Severity.WARNING, code, message)


def _notice(code: str, message: str) -> Finding:
    return Finding(Severity.NOTICE, code, message)


def _fold(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold()


# ICAO Doc 9303 Part 3 §6 (Table A): Latin letters with a multi-letter transliteration; every other
# Latin letter with a diacritic loses it (e.g. é -> e).
_ICAO_9303: Final = str.maketrans(
    {"ä": "ae", "å": "aa", "æ": "ae", "ö": "oe", "ø": "oe", "ü": "ue", "ß": "ss", "þ": "th", "ĳ": "ij", "œ": "oe"}
)


def _name_forms(value: str) -> set[str]:
    """The name as written, with diacritics dropped, and transliterated per ICAO 9303 Part 3."""
    folded = _fold(value)
    stripped = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    icao = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded.translate(_ICAO_9303)) if not unicodedata.combining(ch)
    )
    return {folded, stripped, icao}


def natural_semantics_applies(serial_number: str | None) -> bool:
    """True if ``serialNumber`` uses an EN 319 412-1 §5.1.3 type (PAS, IDC, PNO, TIN, EID, TAX), so the
    certificate should carry semanticsId-Natural (0.4.0.194121.1.1) in a pkixQCSyntax-v2 statement.

    National ``XX:`` schemes are excluded (they need nameRegistrationAuthorities, NAT-5.1.3-05).
    """
    if serial_number is None:
        return False
    m = _NATURAL_ID_RE.match(serial_number)
    return m is not None and m["type"] in NATURAL_IDENTIFIER_TYPES


def legal_semantics_applies(org_id: str | None) -> bool:
    """True if ``organizationIdentifier`` uses an EN 319 412-1 §5.1.4 type (VAT, NTR, PSD, LEI, EOR, EXC)
    without a subdivision, so the certificate should carry semanticsId-Legal (0.4.0.194121.1.2).

    National ``XX:`` schemes are excluded (they need nameRegistrationAuthorities, LEG-5.1.4-05).
    """
    if org_id is None:
        return False
    m = _LEGAL_ID_RE.match(org_id)
    return m is not None and m["type"] in LEGAL_IDENTIFIER_TYPES and m["sp"] is None


def lei_check_digits_valid(lei: str) -> bool:
    """ISO 17442 / ISO 7064 MOD 97-10: the 20-character LEI, letters as 10..35, is 1 modulo 97."""
    if not _LEI_RE.match(lei):
        return False
    digits = "".join(str(int(ch, 36)) for ch in lei)
    return int(digits) % 97 == 1


# --- identifier syntax (EN 319 412-1 §5.1.3 / §5.1.4) -----------------------------------------------


def _serial_number_syntax_findings(value: str) -> list[Finding]:
    """RFC 5280 Appendix A: X520SerialNumber ::= PrintableString (SIZE (1..ub-serial-number)), ub = 64."""
    if len(value) > _UB_SERIAL_NUMBER or not is_printable_string(value):
        return [
            _err(
                "rfc5280.appendix_a.serial_number_not_printable",
                f'RFC 5280 Appendix A: serialNumber "{value}" is not a PrintableString of at most '
                f"{_UB_SERIAL_NUMBER} characters",
            )
        ]
    return []


def _natural_identifier_findings(value: str) -> list[Finding]:
    """EN 319 412-1 §5.1.3: serialNumber = <type><country>-<id>."""
    out: list[Finding] = []
    out += _serial_number_syntax_findings(value)
    m = _NATURAL_ID_RE.match(value)
    if m is None:
        # EN 319 412-1 NAT-5.1.3-02/-03: the semantics-identifier syntax.
        out.append(
            _err(
                "etsi.en_319_412_1.nat-5.1.3.serial_syntax",
                f'EN 319 412-1 §5.1.3: serialNumber "{value}" is not <type><country>-<id>',
            )
        )
        return out
    id_type, country = m["type"], m["country"]
    if id_type.endswith(":"):
        # EN 319 412-1 NAT-5.1.3-05/-06: a national scheme needs nameRegistrationAuthorities (URI).
        out.append(
            _err(
                "etsi.en_319_412_1.nat-5.1.3-05.national_scheme_unsupported",
                f'EN 319 412-1 NAT-5.1.3-05: serialNumber "{value}" uses national scheme "{id_type}", '
                "which needs nameRegistrationAuthorities in the semantics statement; this CA does not "
                "issue them",
            )
        )
        return out
    if id_type not in NATURAL_IDENTIFIER_TYPES:
        # EN 319 412-1 NAT-5.1.3-03: the 3-character type is one of the listed ones.
        out.append(
            _err(
                "etsi.en_319_412_1.nat-5.1.3.unknown_type",
                f'EN 319 412-1 §5.1.3: serialNumber "{value}" has unknown identity type "{id_type}" '
                "(PAS, IDC, PNO, TAX, TIN, EID or XX:)",
            )
        )
        return out
    # EN 319 412-1 §5.1.3: ISO 3166-1 country (pkilint also accepts EU); Greece may use EL for TIN.
    allowed = _ISO3166 | _TRANSNATIONAL | ({"EL"} if id_type == "TIN" else set())
    if country not in allowed:
        out.append(
            _err(
                "etsi.en_319_412_1.nat-5.1.3.invalid_country",
                f'EN 319 412-1 §5.1.3: serialNumber "{value}" country "{country}" is not an ISO 3166-1 '
                "alpha-2 code" + (" (or EL)" if id_type == "TIN" else "") + " or EU/EZ/SU/UN",
            )
        )
    if id_type == "TAX":
        # EN 319 412-1 NAT-5.1.3-04: TAX is deprecated; use TIN.
        out.append(
            _warn(
                "etsi.en_319_412_1.nat-5.1.3-04.deprecated_tax",
                f'EN 319 412-1 NAT-5.1.3-04: serialNumber "{value}" uses the deprecated type TAX; use TIN',
            )
        )
    elif id_type == "EID":
        # EN 319 412-1 V1.6.1 §5.1.3 adds EID; pkilint 0.13.3 only knows PAS/IDC/PNO/TAX/TIN.
        out.append(
            _notice(
                "qtsp.pkilint_gap.nat-5.1.3.eid",
                f'EN 319 412-1 V1.6.1 §5.1.3: serialNumber "{value}" uses type EID, which {_PKILINT} does '
                "not know yet; the lint gate records its finding as a known gap (ca.issuance.lint)",
            )
        )
    return out


def _legal_identifier_findings(value: str) -> list[Finding]:
    """EN 319 412-1 §5.1.4: organizationIdentifier = <type><country>[+<sp>]-<id>."""
    out: list[Finding] = []
    m = _LEGAL_ID_RE.match(value)
    if m is None:
        # EN 319 412-1 LEG-5.1.4-02/-03: the semantics-identifier syntax.
        return [
            _err(
                "etsi.en_319_412_1.leg-5.1.4-02.invalid_format",
                f'EN 319 412-1 §5.1.4: organizationIdentifier "{value}" is not <type><country>-<id>',
            )
        ]
    id_type, country, sp, ref = m["type"], m["country"], m["sp"], m["id"]
    if id_type.endswith(":"):
        # EN 319 412-1 LEG-5.1.4-05/-06: a national scheme needs nameRegistrationAuthorities (URI).
        return [
            _err(
                "etsi.en_319_412_1.leg-5.1.4-05.national_scheme_unsupported",
                f'EN 319 412-1 LEG-5.1.4-05: organizationIdentifier "{value}" uses national scheme '
                f'"{id_type}", which needs nameRegistrationAuthorities in the semantics statement; this '
                "CA does not issue them",
            )
        ]
    if id_type not in LEGAL_IDENTIFIER_TYPES:
        # EN 319 412-1 LEG-5.1.4-03: the 3-character type is one of the listed ones.
        return [
            _err(
                "etsi.en_319_412_1.leg-5.1.4-03.unknown_type",
                f'EN 319 412-1 §5.1.4: organizationIdentifier "{value}" has unknown identity type '
                f'"{id_type}" (VAT, NTR, PSD, LEI, EOR, EXC or XX:)',
            )
        ]
    if sp is not None:
        if id_type == "NTR":
            # EN 319 412-1 LEG-5.1.4-08 allows NTR<CC>+<SP>; pkilint 0.13.3 rejects any subdivision.
            out.append(
                _err(
                    "etsi.en_319_412_1.leg-5.1.4-08.subdivision_refused",
                    f'EN 319 412-1 LEG-5.1.4-08: organizationIdentifier "{value}" uses the "+{sp}" '
                    f"subdivision form; V1.6.1 allows it but {_PKILINT} reports "
                    "etsi.en_319_412_1.leg-5.1.4-02.invalid_format, so this CA refuses it",
                )
            )
        else:
            # EN 319 412-1 LEG-5.1.4-08: only NTR may name a subdivision.
            out.append(
                _err(
                    "etsi.en_319_412_1.leg-5.1.4-08.subdivision_not_ntr",
                    f'EN 319 412-1 LEG-5.1.4-08: organizationIdentifier "{value}": only NTR may carry a '
                    f'"+<subdivision>", not {id_type}',
                )
            )
    if id_type == "LEI":
        # EN 319 412-1 LEG-5.1.4-03: LEI uses the global country code XG.
        if country != "XG":
            out.append(
                _err(
                    "etsi.en_319_412_1.leg-5.1.4-03.invalid_country",
                    f'EN 319 412-1 §5.1.4: organizationIdentifier "{value}": LEI takes country XG, not "{country}"',
                )
            )
        if not _LEI_RE.match(ref):
            # ISO 17442: 20 characters, 18 alphanumerics + 2 check digits.
            out.append(
                _err(
                    "iso.17442.lei.invalid_format",
                    f'ISO 17442: LEI "{ref}" is not 18 uppercase alphanumerics followed by 2 check digits',
                )
            )
        elif not lei_check_digits_valid(ref):
            # ISO 17442 / ISO 7064 MOD 97-10 check digits.
            out.append(
                _err(
                    "iso.17442.lei.invalid_checksum",
                    f'ISO 17442 (ISO 7064 MOD 97-10): LEI "{ref}" has wrong check digits',
                )
            )
        return out
    # EN 319 412-1 LEG-5.1.4-03: ISO 3166-1 country (or EU/EZ/SU/UN); LEG-5.1.4-04: VAT may use EL or XI.
    allowed = _ISO3166 | _TRANSNATIONAL | ({"EL", "XI"} if id_type == "VAT" else set())
    if country not in allowed:
        clause = "LEG-5.1.4-04" if id_type == "VAT" else "§5.1.4"
        out.append(
            _err(
                "etsi.en_319_412_1.leg-5.1.4-03.invalid_country",
                f'EN 319 412-1 {clause}: organizationIdentifier "{value}" country "{country}" is not an '
                "ISO 3166-1 alpha-2 code" + (", EL or XI" if id_type == "VAT" else "") + " or EU/EZ/SU/UN",
            )
        )
    if id_type in ("EOR", "EXC"):
        # EN 319 412-1 V1.6.1 §5.1.4 adds EOR and EXC; pkilint 0.13.3 only knows NTR/VAT/PSD/LEI.
        out.append(
            _notice(
                f"qtsp.pkilint_gap.leg-5.1.4.{id_type.lower()}",
                f'EN 319 412-1 V1.6.1 §5.1.4: organizationIdentifier "{value}" uses type {id_type}, which '
                f"{_PKILINT} does not know yet; the lint gate records its finding as a known gap (ca.issuance.lint)",
            )
        )
    return out


# --- rule building blocks ---------------------------------------------------------------------------


def _country_findings(country: str, code: str, clause: str) -> list[Finding]:
    if country not in _ISO3166:
        return [_err(code, f'{clause}: countryName "{country}" is not an uppercase ISO 3166-1 alpha-2 code')]
    return []


def _email_findings(email: str) -> list[Finding]:
    """RFC 5322 §3.4.1 addr-spec (dot-atom@domain, ASCII) as used by rfc822Name (RFC 5280 §4.2.1.6)."""
    bad = _err(
        "rfc5322.addr_spec.invalid",
        f'RFC 5322 §3.4.1: email "{email}" is not an ASCII addr-spec local@domain',
    )
    if not email.isascii() or email.count("@") != 1:
        return [bad]
    local, domain = email.split("@")
    labels = domain.split(".")
    if (
        not _EMAIL_LOCAL_RE.match(local)
        or len(local) > 64
        or len(domain) > 253
        or len(labels) < 2
        or not all(_DNS_LABEL_RE.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return [bad]
    return []


def _scripts(value: str) -> set[str]:
    """The Unicode scripts of the letters in ``value`` (first word of the character name)."""
    out: set[str] = set()
    for ch in value:
        if ch.isalpha() and unicodedata.category(ch) != "Lm":
            out.add(unicodedata.name(ch, "UNKNOWN").split(" ")[0])
    return out


def _mixed_script_findings(s: SubjectInput) -> list[Finding]:
    """EN 319 412-2 NAT-4.2.4-19: givenName, surname, pseudonym and commonName SHOULD use one script."""
    scripts: set[str] = set()
    for value in (s.givenName, s.surname, s.pseudonym, s.commonName):
        if value is not None:
            scripts |= _scripts(value)
    if len(scripts) > 1:
        return [
            _warn(
                "etsi.en_319_412_2.nat-4.2.4-19.mixed_scripts",
                "EN 319 412-2 NAT-4.2.4-19: name attributes mix scripts (" + ", ".join(sorted(scripts)) + ")",
            )
        ]
    return []


def _organization_identifier_equals_name(s: SubjectInput, code: str, clause: str) -> list[Finding]:
    if (
        s.organizationIdentifier is not None
        and s.organizationName is not None
        and _fold(s.organizationIdentifier) == _fold(s.organizationName)
    ):
        return [
            _err(
                code,
                f'{clause}: organizationIdentifier "{s.organizationIdentifier}" must differ from organizationName',
            )
        ]
    return []


def admission_rules(a: AdmissionInput) -> list[Finding]:
    """Common PKI AdmissionSyntax (1.3.36.8.3.3) value limits (STANDARDS.md §1.8)."""
    out: list[Finding] = []
    if len(a.profession) > _UB_PROFESSION:
        # Common PKI ProfessionInfo: professionItems DirectoryString (SIZE(1..128)).
        out.append(
            _err(
                "commonpki.admission.profession_too_long",
                f"Common PKI ProfessionInfo: profession is longer than {_UB_PROFESSION} characters",
            )
        )
    if a.professionOid is not None and not is_oid(a.professionOid):
        # Common PKI ProfessionInfo: professionOIDs SEQUENCE OF OBJECT IDENTIFIER.
        out.append(
            _err(
                "commonpki.admission.profession_oid_syntax",
                f'Common PKI ProfessionInfo: professionOid "{a.professionOid}" is not a dotted OID',
            )
        )
    if a.registrationNumber is not None and (
        len(a.registrationNumber) > _UB_PROFESSION or not is_printable_string(a.registrationNumber)
    ):
        # Common PKI ProfessionInfo: registrationNumber PrintableString (SIZE(1..128)).
        out.append(
            _err(
                "commonpki.admission.registration_number_syntax",
                f'Common PKI ProfessionInfo: registrationNumber "{a.registrationNumber}" is not a '
                f"PrintableString of at most {_UB_PROFESSION} characters",
            )
        )
    return out


# --- the profiles -------------------------------------------------------------------------------------


def natural_person_rules(s: SubjectInput) -> list[Finding]:
    """EN 319 412-2 §4.2.4 subject rules for a natural person (QES, NCP+ authentication)."""
    out: list[Finding] = []
    # EN 319 412-2 NAT-4.2.4-1: countryName, commonName and (givenName and/or surname, or pseudonym).
    if s.countryName is None:
        out.append(
            _err(
                "etsi.en_319_412_2.nat-4.2.4-1.missing_country",
                "EN 319 412-2 NAT-4.2.4-1: countryName is required",
            )
        )
    if s.commonName is None:
        out.append(
            _err(
                "etsi.en_319_412_2.nat-4.2.4-1.missing_common_name",
                "EN 319 412-2 NAT-4.2.4-1: commonName is required",
            )
        )
    if s.givenName is None and s.surname is None and s.pseudonym is None:
        out.append(
            _err(
                "etsi.en_319_412_2.nat-4.2.4-1.missing_name",
                "EN 319 412-2 NAT-4.2.4-1: givenName and/or surname, or pseudonym, is required",
            )
        )
    # EN 319 412-2 NAT-4.2.4-4: no pseudonym together with givenName/surname.
    if s.pseudonym is not None and (s.givenName is not None or s.surname is not None):
        out.append(
            _err(
                "etsi.en_319_412_2.nat-4.2.4-4.pseudonym_with_name",
                "EN 319 412-2 NAT-4.2.4-4: pseudonym must not appear together with givenName or surname",
            )
        )
    # ITU-T X.520 countryName: an ISO 3166-1 alpha-2 code (uppercase, PrintableString SIZE(2)).
    if s.countryName is not None:
        out += _country_findings(s.countryName, "itu.x520.country_name.not_iso3166_alpha2", "ITU-T X.520 countryName")
    # EN 319 412-1 §5.1.3: serialNumber semantics syntax.
    if s.serialNumber is not None:
        out += _natural_identifier_findings(s.serialNumber)
    # EN 319 412-2 NAT-4.2.4-6 lets O and organizationIdentifier name the associated organisation (a
    # MAY); our CP requires the name whenever the identifier is present, so a relying party always
    # sees whom the identifier belongs to.
    if s.organizationIdentifier is not None:
        if s.organizationName is None:
            out.append(
                _err(
                    "etsi.en_319_412_2.nat-4.2.4-6.organization_identifier_without_name",
                    "EN 319 412-2 NAT-4.2.4-6 (CP rule): organizationIdentifier needs organizationName",
                )
            )
        out += _legal_identifier_findings(s.organizationIdentifier)
        # organizationIdentifier differs from organizationName: EN 319 412-3 LEG-4.2.1-6, applied by
        # pkilint to natural persons' organisation attributes too (as EN 319 412-2 GEN-4.2.3.1-8).
        out += _organization_identifier_equals_name(
            s,
            "etsi.en_319_412_2.gen-4.2.3.1-8.organization_identifier_equals_name",
            "EN 319 412-2 GEN-4.2.3.1-8",
        )
    # EN 319 412-2 NAT-4.2.4-15: commonName contains a name of the subject, where the CN may be a
    # transliteration (NAT-4.2.4-12A: ICAO 9303 Part 3), e.g. "Juergen Mueller" for Jürgen Müller.
    if s.commonName is not None:
        names = [n for n in (s.surname, s.givenName, s.pseudonym) if n is not None]
        cn_forms = _name_forms(s.commonName)
        if names and not any(form in cn for n in names for form in _name_forms(n) for cn in cn_forms):
            out.append(
                _err(
                    "etsi.en_319_412_2.nat-4.2.4-15.common_name_not_subject_name",
                    f'EN 319 412-2 NAT-4.2.4-15: commonName "{s.commonName}" contains none of the '
                    "subject's surname, givenName or pseudonym",
                )
            )
    # EN 319 412-2 NAT-4.2.4-19: no mixed scripts (SHOULD).
    out += _mixed_script_findings(s)
    if s.email is not None:
        out += _email_findings(s.email)
    if s.admission is not None:
        out += admission_rules(s.admission)
    return out


def legal_person_rules(s: SubjectInput) -> list[Finding]:
    """EN 319 412-3 §4.2.1 subject rules for a legal person (QSeal)."""
    out: list[Finding] = []
    # EN 319 412-3 LEG-4.2.1-2: countryName, organizationName, organizationIdentifier, commonName.
    required: tuple[tuple[str, str | None, str], ...] = (
        ("countryName", s.countryName, "missing_country"),
        ("organizationName", s.organizationName, "missing_organization_name"),
        ("organizationIdentifier", s.organizationIdentifier, "missing_organization_identifier"),
        ("commonName", s.commonName, "missing_common_name"),
    )
    for key, value, code in required:
        if value is None:
            out.append(_err(f"etsi.en_319_412_3.leg-4.2.1-2.{code}", f"EN 319 412-3 LEG-4.2.1-2: {key} is required"))
    # EN 319 412-3 §4.2.1: a legal-person subject carries no natural-person name attributes
    # (pkilint's determine_certificate_type would classify the certificate as a natural person's).
    for key in ("givenName", "surname", "pseudonym"):
        if getattr(s, key) is not None:
            out.append(
                _err(
                    "etsi.en_319_412_3.leg-4.2.1.natural_person_attribute",
                    f"EN 319 412-3 §4.2.1: {key} is a natural-person attribute; a legal-person subject "
                    "must not carry it",
                )
            )
    # EN 319 412-3 LEG-4.2.1-4: countryName is the (ISO 3166) country where the legal person is established.
    if s.countryName is not None:
        out += _country_findings(
            s.countryName, "etsi.en_319_412_3.leg-4.2.1-4.invalid_country", "EN 319 412-3 LEG-4.2.1-4"
        )
    # EN 319 412-1 §5.1.4: organizationIdentifier semantics syntax.
    if s.organizationIdentifier is not None:
        out += _legal_identifier_findings(s.organizationIdentifier)
    # EN 319 412-3 LEG-4.2.1-6 (and 412-2 GEN-4.2.3.1-8): organizationIdentifier != organizationName.
    out += _organization_identifier_equals_name(
        s, "etsi.en_319_412_3.leg-4.2.1-6.organization_identifier_equals_name", "EN 319 412-3 LEG-4.2.1-6"
    )
    if s.serialNumber is not None:
        out += _serial_number_syntax_findings(s.serialNumber)
    if s.email is not None:
        out += _email_findings(s.email)
    if s.admission is not None:
        out += admission_rules(s.admission)
    return out


#: Rule functions by subject kind, for callers that pick a profile by name.
RULES_BY_KIND: Final[dict[str, Callable[[SubjectInput], list[Finding]]]] = {
    "natural": natural_person_rules,
    "legal": legal_person_rules,
}
