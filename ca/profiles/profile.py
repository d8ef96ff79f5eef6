"""Declarative certificate profiles: raw TOML (:class:`ProfileConfig`) -> validated, frozen :class:`Profile`.

A profile is validated once, at load; a profile that would break EN 319 411-2 / EN 319 412 is
refused with a :class:`ProfileError` naming the key and the clause (boulder's ``NewProfile``).
The request can never override what a profile fixes: policy, QC statements, key usage, EKU.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.profiles import oids

__all__ = [
    "KEY_USAGE_BITS",
    "Profile",
    "ProfileError",
    "QCStatementsProfile",
    "load_builtin_profiles",
    "load_profile_file",
    "parse_profile",
]

KEY_USAGE_BITS: Final = (
    "digitalSignature",
    "contentCommitment",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
)

_EKU: Final = {
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
}

_QUALIFIED_POLICIES: Final = {
    oids.QCP_N_QSCD.dotted_string: ("natural", True, "esign"),
    oids.QCP_N.dotted_string: ("natural", False, "esign"),
    oids.QCP_L_QSCD.dotted_string: ("legal", True, "eseal"),
    oids.QCP_L.dotted_string: ("legal", False, "eseal"),
}
_NON_QUALIFIED_POLICIES: Final = {oids.NCP.dotted_string, oids.NCP_PLUS.dotted_string, oids.LCP.dotted_string}

# The brief's products are valid for at most three years.
MAX_VALIDITY_DAYS: Final = 3 * 366


class ProfileError(Exception):
    """A profile definition that cannot be used.  ``str()`` names the profile, the key and the rule."""


@dataclass(frozen=True, slots=True)
class QCStatementsProfile:
    """Which EN 319 412-5 statements a profile's certificates carry (semantics follow the subject)."""

    compliance: bool
    sscd: bool
    qc_type: Literal["esign", "eseal"]
    pds: bool


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    subject_kind: Literal["natural", "legal"]
    issuer: str
    """Name of the issuing CA (``qes``, ``seal``, ``auth``)."""
    etsi_policy: x509.ObjectIdentifier
    own_policy: int
    """Appended to the configured CP arc: our own CP OID sits beside the ETSI one."""
    key_usage: frozenset[str]
    extended_key_usage: tuple[x509.ObjectIdentifier, ...]
    email_extended_key_usage: tuple[x509.ObjectIdentifier, ...]
    max_validity_days: int
    default_validity_days: int
    allow_organization: bool
    allow_admission: bool
    allow_email: bool
    qc: QCStatementsProfile | None

    @property
    def qualified(self) -> bool:
        return self.qc is not None

    def own_policy_oid(self, cp_arc: str) -> x509.ObjectIdentifier:
        return x509.ObjectIdentifier(f"{cp_arc}.{self.own_policy}")


class _Raw:
    def __init__(self, where: str, raw: Mapping[str, object]) -> None:
        self.where = where
        self.raw = dict(raw)
        self.seen: set[str] = set()

    def fail(self, key: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.where}: {key}: {problem}")

    def get(self, key: str, kind: type, default: object = None) -> object:
        self.seen.add(key)
        value = self.raw.get(key, default)
        if value is None:
            raise self.fail(key, "is required")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, f"must be of type {kind.__name__} (got {value!r})")
        return value

    def string(self, key: str, default: str | None = None) -> str:
        value = self.get(key, str, default)
        assert isinstance(value, str)
        return value

    def integer(self, key: str) -> int:
        value = self.get(key, int)
        assert isinstance(value, int)
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self.get(key, bool, default)
        assert isinstance(value, bool)
        return value

    def strings(self, key: str) -> list[str]:
        value = self.get(key, list, [])
        assert isinstance(value, list)
        if not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return [str(v) for v in value]

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.seen)
        if unknown:
            raise self.fail(unknown[0], "unknown key")


def parse_profile(raw: Mapping[str, object], where: str = "profile") -> Profile:
    """Validate a raw profile mapping (from TOML) into a :class:`Profile`.

    :raises ProfileError: naming the first problem.
    """
    r = _Raw(where, raw)
    name = r.string("name")
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,62}", name):
        raise r.fail("name", f"must be lowercase letters, digits and '-' (got {name!r})")
    r.where = f"profile {name}"
    subject_kind = r.string("subject")
    if subject_kind not in ("natural", "legal"):
        raise r.fail("subject", f"must be 'natural' or 'legal' (got {subject_kind!r})")
    policy_str = r.string("etsi_policy")
    own_policy = r.integer("own_policy")
    if own_policy < 1:
        raise r.fail("own_policy", "must be a positive integer")

    key_usage = r.strings("key_usage")
    for bit in key_usage:
        if bit not in KEY_USAGE_BITS:
            raise r.fail("key_usage", f"unknown or forbidden bit {bit!r} (allowed: {', '.join(KEY_USAGE_BITS)})")
    ku = frozenset(key_usage)

    def ekus(key: str) -> tuple[x509.ObjectIdentifier, ...]:
        out = []
        for e in r.strings(key):
            if e not in _EKU:
                raise r.fail(key, f"unknown or forbidden extended key usage {e!r} (allowed: {', '.join(_EKU)})")
            out.append(_EKU[e])
        return tuple(out)

    eku = ekus("extended_key_usage")
    email_eku = ekus("email_extended_key_usage")

    max_days = r.integer("max_validity_days")
    default_days = r.integer("default_validity_days")
    if not 1 <= max_days <= MAX_VALIDITY_DAYS:
        raise r.fail("max_validity_days", f"must be between 1 and {MAX_VALIDITY_DAYS} (three years)")
    if not 1 <= default_days <= max_days:
        raise r.fail("default_validity_days", "must be between 1 and max_validity_days")

    qc_raw = r.raw.get("qc_statements")
    r.seen.add("qc_statements")
    qc: QCStatementsProfile | None = None
    if qc_raw is not None:
        if not isinstance(qc_raw, Mapping):
            raise r.fail("qc_statements", "must be a table")
        q = _Raw(f"profile {name}: qc_statements", qc_raw)
        qc_type = q.string("type")
        if qc_type not in ("esign", "eseal"):
            raise q.fail("type", f"must be 'esign' or 'eseal' (got {qc_type!r})")
        qc = QCStatementsProfile(
            compliance=q.boolean("compliance"),
            sscd=q.boolean("sscd"),
            qc_type="esign" if qc_type == "esign" else "eseal",
            pds=q.boolean("pds"),
        )
        q.finish()

    profile = Profile(
        name=name,
        description=r.string("description"),
        subject_kind="natural" if subject_kind == "natural" else "legal",
        issuer=r.string("issuer"),
        etsi_policy=x509.ObjectIdentifier(policy_str),
        own_policy=own_policy,
        key_usage=ku,
        extended_key_usage=eku,
        email_extended_key_usage=email_eku,
        max_validity_days=max_days,
        default_validity_days=default_days,
        allow_organization=r.boolean("allow_organization", False),
        allow_admission=r.boolean("allow_admission", False),
        allow_email=r.boolean("allow_email", False),
        qc=qc,
    )
    r.finish()
    _check_consistency(profile, r)
    return profile


def _check_consistency(p: Profile, r: _Raw) -> None:
    """The rules a profile itself must keep, each citing its clause."""
    policy = p.etsi_policy.dotted_string
    if policy in _QUALIFIED_POLICIES:
        kind, qscd, qc_type = _QUALIFIED_POLICIES[policy]
        if p.qc is None or not p.qc.compliance:
            # EN 319 412-5 QCS-5-01 / EN 319 411-2: an EU qualified certificate carries QcCompliance.
            raise r.fail("qc_statements", "EN 319 412-5 QCS-5-01: a QCP policy needs QcCompliance")
        if p.qc.sscd != qscd:
            # EN 319 411-2 GEN-6.6.1-03/-04: QcSSCD if and only if the policy is a -qscd policy.
            raise r.fail("qc_statements.sscd", f"EN 319 411-2 GEN-6.6.1-03/-04: QcSSCD must be {str(qscd).lower()}")
        if p.qc.qc_type != qc_type:
            # EN 319 412-5 QCS-5.2-2: QcType consistent with the policy (n -> esign, l -> eseal).
            raise r.fail("qc_statements.type", f"EN 319 412-5 QCS-5.2-2: {policy} requires QcType {qc_type}")
        if p.subject_kind != kind:
            raise r.fail("subject", f"EN 319 411-2: policy {policy} is for {kind} persons")
        if not p.qc.pds:
            # EN 319 411-2 OVR-6.9.4-03: a PDS is mandatory for QCs.
            raise r.fail("qc_statements.pds", "EN 319 411-2 OVR-6.9.4-03: qualified certificates reference a PDS")
        # EN 319 412-2 NAT-4.3.2-2 / EN 319 412-3 LEG-4.3.1-3/-4: commitment certificates use
        # setting A (contentCommitment only), the preferred one and the only one we allow.
        if p.key_usage != {"contentCommitment"}:
            raise r.fail("key_usage", "EN 319 412-2 NAT-4.3.2-2/-3: qualified signature and seal keys use setting A")
        if p.extended_key_usage or p.email_extended_key_usage:
            raise r.fail("extended_key_usage", "qualified commitment certificates carry no extended key usage here")
        if p.allow_email:
            raise r.fail("allow_email", "qualified profiles do not carry an email address")
    elif policy in _NON_QUALIFIED_POLICIES:
        if p.qc is not None:
            # STANDARDS.md §1.5: no QcCompliance in a non-qualified (authentication) certificate.
            raise r.fail("qc_statements", f"policy {policy} is not qualified: no QC statements")
        if p.key_usage != {"digitalSignature"}:
            # EN 319 412-2 Table 1 setting C: authentication certificates use digitalSignature only.
            raise r.fail("key_usage", "EN 319 412-2 Table 1: authentication certificates use setting C")
        if p.email_extended_key_usage and not p.allow_email:
            raise r.fail("email_extended_key_usage", "needs allow_email = true")
    else:
        raise r.fail("etsi_policy", f"{policy} is not an EN 319 411-1/-2 policy this engine issues under")
    if p.subject_kind == "legal" and p.allow_admission:
        raise r.fail("allow_admission", "a professional admission belongs to a natural person")


def load_profile_file(path: Path) -> Profile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: cannot be read: {exc}") from None
    return parse_profile(raw, where=str(path))


def load_builtin_profiles() -> dict[str, Profile]:
    """The profiles shipped in this package, validated once."""
    out: dict[str, Profile] = {}
    for entry in sorted(resources.files("ca.profiles").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            raw = tomllib.loads(entry.read_text(encoding="utf-8"))
            profile = parse_profile(raw, where=entry.name)
            if profile.name in out:
                raise ProfileError(f"{entry.name}: duplicate profile name {profile.name}")
            out[profile.name] = profile
    return out
