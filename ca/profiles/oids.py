"""Object identifiers used by the certificate profiles, as :class:`cryptography.x509.ObjectIdentifier`.

Every constant names the standard and clause that defines it (see also ``shared/STANDARDS.md`` §1.1).
The dotted strings are available as ``OID.dotted_string``; :mod:`ca.asn1` takes dotted strings.
"""

from __future__ import annotations

from cryptography.x509 import ObjectIdentifier

__all__ = [
    "ADMISSION",
    "ARCHIVE_CUTOFF",
    "EXPIRED_CERTS_ON_CRL",
    "EXTENDED_REVOKE",
    "ISISMTT_NAMING_AUTHORITY_RECHT_WIRTSCHAFT_STEUERN",
    "ISISMTT_PATENTANWAELTIN",
    "ISISMTT_PATENTANWALT",
    "LCP",
    "NCP",
    "NCP_PLUS",
    "OCSP_NOCHECK",
    "ORGANIZATION_IDENTIFIER",
    "PKIX_QC_SYNTAX_V1",
    "PKIX_QC_SYNTAX_V2",
    "QCP_L",
    "QCP_L_QSCD",
    "QCP_N",
    "QCP_N_QSCD",
    "QCS_QC_CC_LEGISLATION",
    "QCS_QC_COMPLIANCE",
    "QCS_QC_IDENT_METHOD",
    "QCS_QC_LIMIT_VALUE",
    "QCS_QC_PDS",
    "QCS_QC_QSCD_LEGISLATION",
    "QCS_QC_RETENTION_PERIOD",
    "QCS_QC_SSCD",
    "QCS_QC_TYPE",
    "QCT_ESEAL",
    "QCT_ESIGN",
    "QCT_WEB",
    "QC_IDENT_EIDAS1_AB",
    "QC_IDENT_EIDAS1_CD",
    "QC_IDENT_EIDAS2_ACD",
    "QC_IDENT_EIDAS2_B",
    "QC_IDENT_METHODS",
    "QC_STATEMENTS",
    "SEMANTICS_ID_EIDAS_LEGAL",
    "SEMANTICS_ID_EIDAS_NATURAL",
    "SEMANTICS_ID_LEGAL",
    "SEMANTICS_ID_NATURAL",
]

# --- Certificate policies -------------------------------------------------------------------------

#: EN 319 411-1 §5.3: NCP (normalized certificate policy).
NCP = ObjectIdentifier("0.4.0.2042.1.1")
#: EN 319 411-1 §5.3: NCP+ (NCP requiring a secure cryptographic device).
NCP_PLUS = ObjectIdentifier("0.4.0.2042.1.2")
#: EN 319 411-1 §5.3: LCP (lightweight certificate policy).
LCP = ObjectIdentifier("0.4.0.2042.1.3")

#: EN 319 411-2 §5.3: QCP-n (EU QC for natural persons, key not in a QSCD).
QCP_N = ObjectIdentifier("0.4.0.194112.1.0")
#: EN 319 411-2 §5.3: QCP-l (EU QC for legal persons, key not in a QSCD).
QCP_L = ObjectIdentifier("0.4.0.194112.1.1")
#: EN 319 411-2 §5.3: QCP-n-qscd (EU QC for natural persons, key in a QSCD: QES).
QCP_N_QSCD = ObjectIdentifier("0.4.0.194112.1.2")
#: EN 319 411-2 §5.3: QCP-l-qscd (EU QC for legal persons, key in a QSCD: QSeal).
QCP_L_QSCD = ObjectIdentifier("0.4.0.194112.1.3")

# --- qcStatements (RFC 3739, EN 319 412-5 V2.5.1 Annex B) -----------------------------------------

#: RFC 3739 §3.2.6: id-pe-qcStatements certificate extension.
QC_STATEMENTS = ObjectIdentifier("1.3.6.1.5.5.7.1.3")
#: RFC 3739 §3.2.6.1: id-qcs-pkixQCSyntax-v1 (do not issue: use v2).
PKIX_QC_SYNTAX_V1 = ObjectIdentifier("1.3.6.1.5.5.7.11.1")
#: RFC 3739 §3.2.6.1: id-qcs-pkixQCSyntax-v2 (statementInfo = SemanticsInformation).
PKIX_QC_SYNTAX_V2 = ObjectIdentifier("1.3.6.1.5.5.7.11.2")

#: EN 319 412-5 §4.2.1: esi4-qcStatement-1 QcCompliance.
QCS_QC_COMPLIANCE = ObjectIdentifier("0.4.0.1862.1.1")
#: EN 319 412-5 §4.3.2: esi4-qcStatement-2 QcLimitValue.
QCS_QC_LIMIT_VALUE = ObjectIdentifier("0.4.0.1862.1.2")
#: EN 319 412-5 §4.3.3: esi4-qcStatement-3 QcRetentionPeriod.
QCS_QC_RETENTION_PERIOD = ObjectIdentifier("0.4.0.1862.1.3")
#: EN 319 412-5 §4.2.2: esi4-qcStatement-4 QcSSCD (key in a QSCD).
QCS_QC_SSCD = ObjectIdentifier("0.4.0.1862.1.4")
#: EN 319 412-5 §4.3.4: esi4-qcStatement-5 QcPDS.
QCS_QC_PDS = ObjectIdentifier("0.4.0.1862.1.5")
#: EN 319 412-5 §4.2.3: esi4-qcStatement-6 QcType.
QCS_QC_TYPE = ObjectIdentifier("0.4.0.1862.1.6")
#: EN 319 412-5 §4.2.3: id-etsi-qct-esign (Annex I, electronic signature).
QCT_ESIGN = ObjectIdentifier("0.4.0.1862.1.6.1")
#: EN 319 412-5 §4.2.3: id-etsi-qct-eseal (Annex III, electronic seal).
QCT_ESEAL = ObjectIdentifier("0.4.0.1862.1.6.2")
#: EN 319 412-5 §4.2.3: id-etsi-qct-web (Annex IV, website authentication).
QCT_WEB = ObjectIdentifier("0.4.0.1862.1.6.3")
#: EN 319 412-5 §4.2.4: esi4-qcStatement-7 QcCClegislation (MUST NOT appear in EU QCs).
QCS_QC_CC_LEGISLATION = ObjectIdentifier("0.4.0.1862.1.7")
#: EN 319 412-5 V2.5.1 §4.3.5: esi4-qcStatement-8 QcIdentMethod.
QCS_QC_IDENT_METHOD = ObjectIdentifier("0.4.0.1862.1.8")
#: EN 319 412-5 V2.5.1 §4.3.5: identified per original eIDAS Art 24(1)(a)/(b).
QC_IDENT_EIDAS1_AB = ObjectIdentifier("0.4.0.1862.1.8.1")
#: EN 319 412-5 V2.5.1 §4.3.5: identified per original eIDAS Art 24(1)(c)/(d).
QC_IDENT_EIDAS1_CD = ObjectIdentifier("0.4.0.1862.1.8.2")
#: EN 319 412-5 V2.5.1 §4.3.5: identified per amended eIDAS Art 24(1a)(a), (c) or (d).
QC_IDENT_EIDAS2_ACD = ObjectIdentifier("0.4.0.1862.1.8.3")
#: EN 319 412-5 V2.5.1 §4.3.5: identified per amended eIDAS Art 24(1a)(b) (an existing QES/QSeal cert).
QC_IDENT_EIDAS2_B = ObjectIdentifier("0.4.0.1862.1.8.4")
#: The values a QcIdentMethod statement may carry (dotted), EN 319 412-5 V2.5.1 §4.3.5 / Annex B.
QC_IDENT_METHODS = frozenset(
    o.dotted_string for o in (QC_IDENT_EIDAS1_AB, QC_IDENT_EIDAS1_CD, QC_IDENT_EIDAS2_ACD, QC_IDENT_EIDAS2_B)
)
#: EN 319 412-5 V2.5.1 §4.2.5: esi4-qcStatement-9 QcQSCDlegislation (non-EU QSCDs only).
QCS_QC_QSCD_LEGISLATION = ObjectIdentifier("0.4.0.1862.1.9")

# --- Semantics identifiers (EN 319 412-1 V1.6.1 §5) -----------------------------------------------

#: EN 319 412-1 §5.1.3: id-etsi-qcs-semanticsId-Natural (serialNumber = <type><country>-<id>).
SEMANTICS_ID_NATURAL = ObjectIdentifier("0.4.0.194121.1.1")
#: EN 319 412-1 §5.1.4: id-etsi-qcs-SemanticsId-Legal (organizationIdentifier = <type><country>-<id>).
SEMANTICS_ID_LEGAL = ObjectIdentifier("0.4.0.194121.1.2")
#: EN 319 412-1 §5.1.5: id-etsi-qcs-semanticsId-eIDASNatural.
SEMANTICS_ID_EIDAS_NATURAL = ObjectIdentifier("0.4.0.194121.1.3")
#: EN 319 412-1 §5.1.6: id-etsi-qcs-SemanticsId-eIDASLegal.
SEMANTICS_ID_EIDAS_LEGAL = ObjectIdentifier("0.4.0.194121.1.4")

# --- Name attributes ------------------------------------------------------------------------------

#: ITU-T X.520 (2012 and later), organizationIdentifier attribute type; EN 319 412-1 §5.1.4 gives its syntax.
ORGANIZATION_IDENTIFIER = ObjectIdentifier("2.5.4.97")

# --- Common PKI / ISIS-MTT ------------------------------------------------------------------------

#: Common PKI (ISIS-MTT) id-isismtt-at-admission, AdmissionSyntax (STANDARDS.md §1.8).
ADMISSION = ObjectIdentifier("1.3.36.8.3.3")
#: Common PKI naming authority "Recht, Wirtschaft, Steuern" (STANDARDS.md §1.8).
ISISMTT_NAMING_AUTHORITY_RECHT_WIRTSCHAFT_STEUERN = ObjectIdentifier("1.3.36.8.3.11.1")
#: Common PKI profession OID Patentanwältin (BouncyCastle ProfessionInfo.Patentanwaeltin).
ISISMTT_PATENTANWAELTIN = ObjectIdentifier("1.3.36.8.3.11.1.18")
#: Common PKI profession OID Patentanwalt (BouncyCastle ProfessionInfo.Patentanwalt).
ISISMTT_PATENTANWALT = ObjectIdentifier("1.3.36.8.3.11.1.19")

# --- OCSP / CRL -----------------------------------------------------------------------------------

#: RFC 6960 §4.2.2.2.1: id-pkix-ocsp-nocheck (EN 319 411-1 CSS-6.6.3-01A: responder certs SHOULD carry it).
OCSP_NOCHECK = ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")
#: RFC 6960 §4.4.4: id-pkix-ocsp-archive-cutoff (EN 319 411-2 CSS-6.3.10-10: = CA cert notBefore).
ARCHIVE_CUTOFF = ObjectIdentifier("1.3.6.1.5.5.7.48.1.6")
#: RFC 6960 §4.4.8: id-pkix-ocsp-extended-revoke (revoked answers for non-issued serials).
EXTENDED_REVOKE = ObjectIdentifier("1.3.6.1.5.5.7.48.1.9")
#: ITU-T X.509 expiredCertsOnCRL CRL extension, GeneralizedTime (EN 319 411-2 CSS-6.3.10-05/-06).
EXPIRED_CERTS_ON_CRL = ObjectIdentifier("2.5.29.60")
