"""Errors of the registration authority.  Each carries a kind, a one-line user-safe detail and,
where rules refused something, the findings that did."""

from __future__ import annotations

import enum

from ca.findings import Finding

__all__ = ["RAError", "RAErrorKind"]


class RAErrorKind(enum.Enum):
    MALFORMED = "malformed"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    SECOND_FACTOR_REQUIRED = "second_factor_required"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    ILLEGAL_TRANSITION = "illegal_transition"
    POLICY_VIOLATION = "policy_violation"
    UNSUPPORTED_MEDIA = "unsupported_media"
    TOO_LARGE = "too_large"
    CA_UNAVAILABLE = "ca_unavailable"
    CA_REFUSED = "ca_refused"
    RATE_LIMITED = "rate_limited"


class RAError(Exception):
    """A refused or failed RA operation; ``str()`` is one line for the caller."""

    def __init__(
        self, kind: RAErrorKind, detail: str, findings: tuple[Finding, ...] = (), *, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.findings = findings
        self.retry_after = retry_after
        """Seconds until a RATE_LIMITED caller may try again (the API's Retry-After)."""
