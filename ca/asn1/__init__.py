"""ca.asn1: typed DER encoders/decoders for the extensions cryptography does not build for us.

This package is the only place that imports asn1crypto (untyped); its public functions take and
return plain Python values.  Importing it registers the qcStatements and Admission specs with
asn1crypto once.
"""

from __future__ import annotations

from ca.asn1.admission import AdmissionEntry, AdmissionInfo, ProfessionEntry, admission_der, parse_admission
from ca.asn1.errors import Asn1DecodeError, Asn1EncodeError
from ca.asn1.qc_statements import QC_TYPES, QCStatementsInfo, parse_qc_statements, qc_statements_der

__all__ = [
    "QC_TYPES",
    "AdmissionEntry",
    "AdmissionInfo",
    "Asn1DecodeError",
    "Asn1EncodeError",
    "ProfessionEntry",
    "QCStatementsInfo",
    "admission_der",
    "parse_admission",
    "parse_qc_statements",
    "qc_statements_der",
]
