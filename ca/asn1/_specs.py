"""asn1crypto specifications (private; the only module family allowed to import asn1crypto is ``ca.asn1``).

The classes mirror the ASN.1 modules they come from; `register` adds the qcStatements
extension to asn1crypto's extension tables once, so that an ``asn1crypto.x509.Certificate`` parsed
anywhere in :mod:`ca.asn1` decodes them too.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from asn1crypto import core, x509

from ca.asn1.errors import Asn1EncodeError

__all__: list[str] = []

# --- OIDs (dotted strings; ca.profiles.oids holds the cryptography constants) ---------------------

ID_PE_QC_STATEMENTS: Final = "1.3.6.1.5.5.7.1.3"
ID_QCS_PKIX_QC_SYNTAX_V1: Final = "1.3.6.1.5.5.7.11.1"
ID_QCS_PKIX_QC_SYNTAX_V2: Final = "1.3.6.1.5.5.7.11.2"
ID_ETSI_QCS_QC_COMPLIANCE: Final = "0.4.0.1862.1.1"
ID_ETSI_QCS_QC_LIMIT_VALUE: Final = "0.4.0.1862.1.2"
ID_ETSI_QCS_QC_RETENTION_PERIOD: Final = "0.4.0.1862.1.3"
ID_ETSI_QCS_QC_SSCD: Final = "0.4.0.1862.1.4"
ID_ETSI_QCS_QC_PDS: Final = "0.4.0.1862.1.5"
ID_ETSI_QCS_QC_TYPE: Final = "0.4.0.1862.1.6"
ID_ETSI_QCS_QC_CC_LEGISLATION: Final = "0.4.0.1862.1.7"
ID_ETSI_QCS_QC_IDENT_METHOD: Final = "0.4.0.1862.1.8"
ID_ETSI_QCS_QC_QSCD_LEGISLATION: Final = "0.4.0.1862.1.9"
QC_TYPE_OIDS: Final = {
    "esign": "0.4.0.1862.1.6.1",
    "eseal": "0.4.0.1862.1.6.2",
    "web": "0.4.0.1862.1.6.3",
}


# --- RFC 3739 / EN 319 412-5 Annex B --------------------------------------------------------------


class SemanticsInformation(core.Sequence):  # type: ignore[misc]
    """RFC 3739 §3.2.6.1 SemanticsInformation (at least one field present)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("semantics_identifier", core.ObjectIdentifier, {"optional": True}),
        ("name_registration_authorities", x509.GeneralNames, {"optional": True}),
    ]


class QcType(core.SequenceOf):  # type: ignore[misc]
    """EN 319 412-5 Annex B: QcType ::= SEQUENCE SIZE (1) OF OBJECT IDENTIFIER (V2.5.1)."""

    _child_spec = core.ObjectIdentifier


class QcIdentMethod(core.SequenceOf):  # type: ignore[misc]
    """EN 319 412-5 V2.5.1 Annex B: QcIdentMethod ::= SEQUENCE SIZE (1) OF OBJECT IDENTIFIER."""

    _child_spec = core.ObjectIdentifier


class PdsLocation(core.Sequence):  # type: ignore[misc]
    """EN 319 412-5 Annex B: PdsLocation ::= SEQUENCE {url IA5String, language PrintableString (SIZE(2))}."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("url", core.IA5String),
        ("language", core.PrintableString),
    ]


class PdsLocations(core.SequenceOf):  # type: ignore[misc]
    """EN 319 412-5 Annex B: PdsLocations ::= SEQUENCE SIZE (1..MAX) OF PdsLocation."""

    _child_spec = PdsLocation


class QcCClegislation(core.SequenceOf):  # type: ignore[misc]
    """EN 319 412-5 Annex B: QcCClegislation ::= SEQUENCE OF CountryName."""

    _child_spec = core.PrintableString


class QCStatement(core.Sequence):  # type: ignore[misc]
    """RFC 3739 §3.2.6: QCStatement ::= SEQUENCE {statementId OID,
    statementInfo ANY DEFINED BY statementId OPTIONAL}."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("statement_id", core.ObjectIdentifier),
        ("statement_info", core.Any, {"optional": True}),
    ]
    _oid_pair: ClassVar[tuple[str, str]] = ("statement_id", "statement_info")
    _oid_specs: ClassVar[dict[str, Any]] = {
        ID_ETSI_QCS_QC_RETENTION_PERIOD: core.Integer,
        ID_ETSI_QCS_QC_PDS: PdsLocations,
        ID_ETSI_QCS_QC_TYPE: QcType,
        ID_ETSI_QCS_QC_CC_LEGISLATION: QcCClegislation,
        ID_ETSI_QCS_QC_IDENT_METHOD: QcIdentMethod,
        ID_QCS_PKIX_QC_SYNTAX_V1: SemanticsInformation,
        ID_QCS_PKIX_QC_SYNTAX_V2: SemanticsInformation,
    }


class QCStatements(core.SequenceOf):  # type: ignore[misc]
    """RFC 3739 §3.2.6: QCStatements ::= SEQUENCE OF QCStatement (the qcStatements extension value)."""

    _child_spec = QCStatement


# --- registration (once) --------------------------------------------------------------------------

_REGISTERED = False
_EXTENSIONS: Final = {
    ID_PE_QC_STATEMENTS: ("qc_statements", QCStatements),
}


def register() -> None:
    """Teach asn1crypto's ``x509.Extension`` the qcStatements extension (idempotent)."""
    global _REGISTERED  # noqa: PLW0603 - a process-wide, once-only registration flag
    if _REGISTERED:
        return
    ext_id: Any = x509.ExtensionId
    ext: Any = x509.Extension
    for dotted, (name, spec) in _EXTENSIONS.items():
        ext_id._map.setdefault(dotted, name)
        if ext_id._reverse_map is not None:
            ext_id._reverse_map.setdefault(name, dotted)
        ext._oid_specs.setdefault(name, spec)
    _REGISTERED = True


register()


# --- small validators shared by the encoders -------------------------------------------------------

_OID_RE: Final = re.compile(r"^[0-2](?:\.(?:0|[1-9][0-9]*))+\Z")
# X.680 §41.4 PrintableString alphabet.
_PRINTABLE_RE: Final = re.compile(r"^[A-Za-z0-9 '()+,\-./:=?]*\Z")


def is_oid(value: object) -> bool:
    """A dotted OID obeying X.660 (first arc 0..2; second arc below 40 under arcs 0 and 1)."""
    if not isinstance(value, str) or not _OID_RE.match(value):
        return False
    first, second = value.split(".")[:2]
    return first == "2" or int(second) < 40


def is_printable_string(value: str) -> bool:
    """True if ``value`` uses only the X.680 §41.4 PrintableString alphabet."""
    return bool(_PRINTABLE_RE.match(value))


def check_oid(value: str, what: str) -> str:
    """Return ``value`` if it is a dotted OID (X.660 arcs), else raise :class:`Asn1EncodeError`."""
    if not is_oid(value):
        raise Asn1EncodeError(f'{what} "{value}" is not a valid dotted object identifier (X.660 arc rules)')
    return value


def one_line(exc: BaseException) -> str:
    """asn1crypto messages span several lines; our errors are one line."""
    return " ".join(str(exc).split())


def is_ia5_string(value: str) -> bool:
    """True if ``value`` is 7-bit ASCII (IA5String)."""
    return value.isascii()
