"""ca.asn1: typed DER encoders/decoders for the extensions cryptography does not build for us.

This package is the only place that imports asn1crypto (untyped); its public functions take and
return plain Python values.  Importing it registers the qcStatements spec with asn1crypto once.
The Common PKI Admission extension is built and parsed by cryptography itself (``x509.Admissions``).
"""

from __future__ import annotations

from ca.asn1._specs import is_oid, is_printable_string
from ca.asn1.errors import Asn1DecodeError, Asn1EncodeError
from ca.asn1.qc_statements import QC_TYPES, QCStatementsInfo, parse_qc_statements, qc_statements_der

__all__ = [
    "QC_TYPES",
    "Asn1DecodeError",
    "Asn1EncodeError",
    "QCStatementsInfo",
    "is_oid",
    "is_printable_string",
    "parse_qc_statements",
    "qc_statements_der",
]
