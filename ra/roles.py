"""Accounts' roles (EN 319 401 REQ-7.2-14; EN 319 411-1 OVR-6.4.4-02) and the authenticated caller.

Applicants own their orders and products.  Operators hold one or more trusted roles; a role is
checked on every operator action, by the API layer and again by the service.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ca.issuance.service import Actor
from ra.errors import RAError, RAErrorKind

__all__ = ["OPERATOR_ROLES", "Principal", "Role"]


class Role(enum.StrEnum):
    APPLICANT = "applicant"
    RA_OFFICER = "ra-officer"
    REVOCATION_OFFICER = "revocation-officer"
    CA_OPERATOR = "ca-operator"
    AUDITOR = "auditor"
    SECURITY_OFFICER = "security-officer"
    SYSTEM = "system"
    """Scheduled jobs (automatic activation, expiry); never held by an account."""


OPERATOR_ROLES = frozenset(
    {Role.RA_OFFICER, Role.REVOCATION_OFFICER, Role.CA_OPERATOR, Role.AUDITOR, Role.SECURITY_OFFICER}
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: an authenticated account, the OS user of a CLI command, or the scheduler.

    :ivar name: the name written to the audit log (``account:<id>:<email>``, ``os:<user>@<host>``).
    :ivar roles: the roles held.
    :ivar account_id: the account, or None for the CLI and the scheduler.
    :ivar person_id: the natural person behind the account, when known (four-eyes and self-approval checks).
    :ivar second_factor: whether a second factor was presented (TOTP for API sessions; the CLI's
        gate is the CA host's own access control).
    """

    name: str
    roles: frozenset[Role]
    account_id: int | None = None
    person_id: int | None = None
    second_factor: bool = False

    def actor(self, role: Role) -> Actor:
        return Actor(name=self.name, role=role.value)

    def require(self, *roles: Role, second_factor: bool = False) -> Role:
        """The first of ``roles`` this caller holds; raise when none, or when a second factor is missing.

        :raises RAError: FORBIDDEN or SECOND_FACTOR_REQUIRED.
        """
        for role in roles:
            if role in self.roles:
                if second_factor and not self.second_factor:
                    raise RAError(
                        RAErrorKind.SECOND_FACTOR_REQUIRED,
                        "this action causes issuance or revocation: log in with a TOTP code first "
                        "(EN 319 411-1 GEN-6.5.5-04)",
                    )
                return role
        wanted = " or ".join(r.value for r in roles)
        raise RAError(RAErrorKind.FORBIDDEN, f"this action needs the role {wanted}")
