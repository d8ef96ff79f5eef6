"""Errors of the issuance pipeline.  Each carries a kind and a one-line, user-safe message."""

from __future__ import annotations

import enum

from ca.findings import Finding, format_findings

__all__ = ["ErrorKind", "IssuanceError", "LintFailed"]


class ErrorKind(enum.Enum):
    MALFORMED = "malformed"
    BAD_CSR = "bad_csr"
    BAD_PUBLIC_KEY = "bad_public_key"
    POLICY_VIOLATION = "policy_violation"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    HSM_UNAVAILABLE = "hsm_unavailable"
    INTERNAL = "internal"


class IssuanceError(Exception):
    """Issuance was refused or failed; ``str()`` is one line for the operator."""

    def __init__(self, kind: ErrorKind, detail: str, findings: tuple[Finding, ...] = ()) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.findings = findings


class LintFailed(IssuanceError):
    """The pre-sign lint found errors; the HSM was not touched."""

    def __init__(self, findings: tuple[Finding, ...]) -> None:
        super().__init__(ErrorKind.POLICY_VIOLATION, format_findings(findings), findings)
