"""The qcStatements extension value (RFC 3739 §3.2.6, EN 319 412-5 V2.5.1).

:func:`qc_statements_der` builds the DER of the extension *value* (``QCStatements``, a SEQUENCE OF
QCStatement); put it in a certificate with ``x509.UnrecognizedExtension(QC_STATEMENTS, der)``,
non-critical (EN 319 412-5 QCS-4.1-02).  :func:`parse_qc_statements` reads it back for our
post-build lint rules.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from asn1crypto import core

from ca.asn1 import _specs
from ca.asn1._specs import (
    ID_ETSI_QCS_QC_CC_LEGISLATION,
    ID_ETSI_QCS_QC_COMPLIANCE,
    ID_ETSI_QCS_QC_IDENT_METHOD,
    ID_ETSI_QCS_QC_PDS,
    ID_ETSI_QCS_QC_RETENTION_PERIOD,
    ID_ETSI_QCS_QC_SSCD,
    ID_ETSI_QCS_QC_TYPE,
    ID_QCS_PKIX_QC_SYNTAX_V2,
    QC_TYPE_OIDS,
)
from ca.asn1.errors import Asn1DecodeError, Asn1EncodeError

__all__ = ["QC_TYPES", "QCStatementsInfo", "parse_qc_statements", "qc_statements_der"]

#: The accepted ``qc_type`` names and their OIDs (EN 319 412-5 §4.2.3).
QC_TYPES: Final[dict[str, str]] = dict(QC_TYPE_OIDS)

_MODELLED: Final = frozenset(
    {
        ID_ETSI_QCS_QC_COMPLIANCE,
        ID_ETSI_QCS_QC_SSCD,
        ID_ETSI_QCS_QC_TYPE,
        ID_ETSI_QCS_QC_PDS,
        ID_QCS_PKIX_QC_SYNTAX_V2,
        ID_ETSI_QCS_QC_RETENTION_PERIOD,
        ID_ETSI_QCS_QC_IDENT_METHOD,
        ID_ETSI_QCS_QC_CC_LEGISLATION,
    }
)


@dataclass(frozen=True, slots=True)
class QCStatementsInfo:
    """What a qcStatements extension value says.

    :ivar compliance: QcCompliance (0.4.0.1862.1.1) present.
    :ivar sscd: QcSSCD (0.4.0.1862.1.4) present.
    :ivar qc_types: the OIDs of every QcType statement, in order (dotted).
    :ivar pds: every PdsLocation as ``(url, language)``, in order.
    :ivar semantics_ids: the semanticsIdentifier of every id-qcs-pkixQCSyntax-v2 statement that has one.
    :ivar semantics_nra_present: some pkixQCSyntax-v2 statement carries nameRegistrationAuthorities.
    :ivar retention_years: the first QcRetentionPeriod value, or None.
    :ivar ident_methods: the OIDs of every QcIdentMethod statement (dotted).
    :ivar cc_legislation_present: QcCClegislation present (an EU QC MUST NOT have it, QCS-4.2.4-01).
    :ivar unknown_statement_oids: statements this parser does not model (e.g. QcLimitValue, PSD2,
        pkixQCSyntax-v1, QcQSCDlegislation), in order.
    :ivar statement_oids: every statementId in order (shows duplicates).
    """

    compliance: bool
    sscd: bool
    qc_types: tuple[str, ...]
    pds: tuple[tuple[str, str], ...]
    semantics_ids: tuple[str, ...]
    semantics_nra_present: bool
    retention_years: int | None
    ident_methods: tuple[str, ...]
    cc_legislation_present: bool
    unknown_statement_oids: tuple[str, ...]
    statement_oids: tuple[str, ...]


def qc_statements_der(
    *,
    compliance: bool,
    sscd: bool,
    qc_type: str | None,
    pds: Sequence[tuple[str, str]] = (),
    semantics_id: str | None = None,
    retention_years: int | None = None,
    ident_method: str | None = None,
) -> bytes:
    """DER of the qcStatements extension value, statements in the order pkilint and EN 319 412-5 list them.

    Order: QcCompliance, QcSSCD, QcType, QcPDS, pkixQCSyntax-v2, QcRetentionPeriod, QcIdentMethod.
    This function only encodes; profile rules (which statements a policy needs, https PDS, an English
    PDS, ...) are checked elsewhere.  All arguments are hashable when ``pds`` is a tuple of tuples, and
    the result is cached.

    :param compliance: add QcCompliance (EN 319 412-5 §4.2.1).
    :param sscd: add QcSSCD (EN 319 412-5 §4.2.2).
    :param qc_type: ``"esign"``, ``"eseal"`` or ``"web"`` -> QcType SEQUENCE SIZE(1) OF OID (§4.2.3), or None.
    :param pds: ``(url, language)`` pairs -> one QcPDS with PdsLocations (§4.3.4); empty means no QcPDS.
    :param semantics_id: dotted semantics identifier -> id-qcs-pkixQCSyntax-v2 SemanticsInformation
        (RFC 3739 §3.2.6.1).
    :param retention_years: QcRetentionPeriod in years after expiry (§4.3.3), > 0.
    :param ident_method: dotted OID -> QcIdentMethod SEQUENCE SIZE(1) OF OID (V2.5.1 §4.3.5).
    :raises Asn1EncodeError: a value cannot be encoded as the standard's ASN.1 type, or no statement at all.
    """
    return _qc_statements_der(
        compliance=compliance,
        sscd=sscd,
        qc_type=qc_type,
        pds=tuple((url, lang) for url, lang in pds),
        semantics_id=semantics_id,
        retention_years=retention_years,
        ident_method=ident_method,
    )


@functools.lru_cache(maxsize=256, typed=True)
def _qc_statements_der(
    *,
    compliance: bool,
    sscd: bool,
    qc_type: str | None,
    pds: tuple[tuple[str, str], ...],
    semantics_id: str | None,
    retention_years: int | None,
    ident_method: str | None,
) -> bytes:
    statements: list[Any] = []

    def add(statement_id: str, info: Any = None) -> None:
        value: dict[str, Any] = {"statement_id": statement_id}
        if info is not None:
            value["statement_info"] = info
        statements.append(_specs.QCStatement(value))

    if compliance:
        add(ID_ETSI_QCS_QC_COMPLIANCE)
    if sscd:
        add(ID_ETSI_QCS_QC_SSCD)
    if qc_type is not None:
        if qc_type not in QC_TYPE_OIDS:
            raise Asn1EncodeError(f'EN 319 412-5 §4.2.3: qc_type "{qc_type}" is not esign, eseal or web')
        add(ID_ETSI_QCS_QC_TYPE, _specs.QcType([QC_TYPE_OIDS[qc_type]]))
    if pds:
        locations = []
        for url, lang in pds:
            if not url or not _specs.is_ia5_string(url) or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
                raise Asn1EncodeError(f'EN 319 412-5 §4.3.4: PDS url "{url}" is not a printable IA5String URL')
            if len(lang) != 2 or not lang.isascii() or not lang.isalpha():
                raise Asn1EncodeError(f'EN 319 412-5 §4.3.4: PDS language "{lang}" is not 2 letters (ISO 639-1)')
            locations.append(_specs.PdsLocation({"url": url, "language": lang}))
        add(ID_ETSI_QCS_QC_PDS, _specs.PdsLocations(locations))
    if semantics_id is not None:
        _specs.check_oid(semantics_id, "RFC 3739 §3.2.6.1: semanticsIdentifier")
        add(ID_QCS_PKIX_QC_SYNTAX_V2, _specs.SemanticsInformation({"semantics_identifier": semantics_id}))
    if retention_years is not None:
        if isinstance(retention_years, bool) or not isinstance(retention_years, int) or retention_years < 1:
            raise Asn1EncodeError(
                f"EN 319 412-5 §4.3.3: QcRetentionPeriod {retention_years!r} is not a positive number"
            )
        add(ID_ETSI_QCS_QC_RETENTION_PERIOD, core.Integer(retention_years))
    if ident_method is not None:
        _specs.check_oid(ident_method, "EN 319 412-5 §4.3.5: QcIdentMethod")
        add(ID_ETSI_QCS_QC_IDENT_METHOD, _specs.QcIdentMethod([ident_method]))
    if not statements:
        raise Asn1EncodeError("RFC 3739 §3.2.6: a qcStatements extension needs at least one statement")
    der = _specs.QCStatements(statements).dump()
    assert isinstance(der, bytes)
    return der


def parse_qc_statements(der: bytes) -> QCStatementsInfo:
    """Decode a qcStatements extension value (strict DER).

    :param der: the extension value (``extnValue`` contents), not the whole Extension.
    :raises Asn1DecodeError: not DER, trailing data, or a modelled statement has a malformed statementInfo.
    """
    parsed = _load_strict(der)
    compliance = sscd = cc_legislation = nra = False
    qc_types: list[str] = []
    pds: list[tuple[str, str]] = []
    semantics: list[str] = []
    retention: int | None = None
    ident: list[str] = []
    unknown: list[str] = []
    oids: list[str] = []
    try:
        for statement in parsed:
            oid = statement["statement_id"].dotted
            oids.append(oid)
            info = statement["statement_info"]
            present = info.native is not None
            if oid == ID_ETSI_QCS_QC_COMPLIANCE:
                compliance = True
            elif oid == ID_ETSI_QCS_QC_SSCD:
                sscd = True
            elif oid == ID_ETSI_QCS_QC_CC_LEGISLATION:
                cc_legislation = True
            elif oid == ID_ETSI_QCS_QC_TYPE:
                _require(present, "QcType")
                qc_types.extend(child.dotted for child in info)
            elif oid == ID_ETSI_QCS_QC_IDENT_METHOD:
                _require(present, "QcIdentMethod")
                ident.extend(child.dotted for child in info)
            elif oid == ID_ETSI_QCS_QC_PDS:
                _require(present, "QcPDS")
                pds.extend((str(loc["url"].native), str(loc["language"].native)) for loc in info)
            elif oid == ID_ETSI_QCS_QC_RETENTION_PERIOD:
                _require(present, "QcRetentionPeriod")
                if retention is None:
                    retention = int(info.native)
            elif oid == ID_QCS_PKIX_QC_SYNTAX_V2 and present:
                sid = info["semantics_identifier"]
                if sid.native is not None:
                    semantics.append(sid.dotted)
                if info["name_registration_authorities"].native is not None:
                    nra = True
            if oid not in _MODELLED:
                unknown.append(oid)
    except Asn1DecodeError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise Asn1DecodeError(f"qcStatements: malformed statement: {_specs.one_line(exc)}") from exc
    return QCStatementsInfo(
        compliance=compliance,
        sscd=sscd,
        qc_types=tuple(qc_types),
        pds=tuple(pds),
        semantics_ids=tuple(semantics),
        semantics_nra_present=nra,
        retention_years=retention,
        ident_methods=tuple(ident),
        cc_legislation_present=cc_legislation,
        unknown_statement_oids=tuple(unknown),
        statement_oids=tuple(oids),
    )


def _require(present: bool, name: str) -> None:
    if not present:
        raise Asn1DecodeError(f"qcStatements: {name} statement without statementInfo")


def _load_strict(der: bytes) -> Any:
    if not isinstance(der, bytes | bytearray):
        raise Asn1DecodeError("qcStatements: expected bytes")
    try:
        parsed = _specs.QCStatements.load(bytes(der), strict=True)
        _ = parsed.native  # force a full parse of every statement
        reencoded = parsed.dump(force=True)
    except (ValueError, TypeError, KeyError) as exc:
        raise Asn1DecodeError(f"qcStatements: not a DER QCStatements value: {_specs.one_line(exc)}") from exc
    if reencoded != bytes(der):
        raise Asn1DecodeError("qcStatements: not DER (re-encoding differs)")
    return parsed
