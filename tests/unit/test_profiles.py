"""Profiles are validated once at load; a profile that breaks a rule is refused naming it."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from ca.profiles import ProfileError, load_builtin_profiles, parse_profile


def _raw(name: str) -> dict[str, object]:
    return tomllib.loads((resources.files("ca.profiles") / f"{name}.toml").read_text(encoding="utf-8"))


def test_builtin_profiles_load() -> None:
    profiles = load_builtin_profiles()
    assert set(profiles) == {"qes-natural", "qseal-legal", "upc-auth"}
    assert profiles["qes-natural"].qualified and not profiles["upc-auth"].qualified
    assert profiles["qes-natural"].own_policy_oid("1.2.3").dotted_string == "1.2.3.1"


def _with(profile: str, /, **changes: object) -> dict[str, object]:
    raw = _raw(profile)
    for key, value in changes.items():
        if "__" in key:
            table, sub = key.split("__")
            raw[table] = dict(raw[table])  # type: ignore[call-overload]
            raw[table][sub] = value  # type: ignore[index]
        elif value is None:
            raw.pop(key)
        else:
            raw[key] = value
    return raw


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("qes-natural", {"qc_statements__sscd": False}, "GEN-6.6.1-03/-04"),
        ("qes-natural", {"qc_statements__compliance": False}, "QCS-5-01"),
        ("qes-natural", {"qc_statements__type": "eseal"}, "QCS-5.2-2"),
        ("qes-natural", {"qc_statements__type": "web"}, "must be 'esign' or 'eseal'"),
        ("qes-natural", {"qc_statements__pds": False}, "OVR-6.9.4-03"),
        ("qes-natural", {"qc_statements": None}, "QCS-5-01"),
        ("qes-natural", {"key_usage": ["digitalSignature", "contentCommitment"]}, "NAT-4.3.2-2/-3"),
        ("qes-natural", {"key_usage": ["keyCertSign"]}, "forbidden bit"),
        ("qes-natural", {"extended_key_usage": ["clientAuth"]}, "no extended key usage"),
        ("qes-natural", {"extended_key_usage": ["serverAuth"]}, "forbidden extended key usage"),
        ("qes-natural", {"subject": "legal"}, "is for natural persons"),
        ("qes-natural", {"allow_email": True}, "do not carry an email"),
        ("qes-natural", {"max_validity_days": 2000}, "three years"),
        ("qes-natural", {"default_validity_days": 1200}, "default_validity_days"),
        ("qes-natural", {"etsi_policy": "0.4.0.194112.1.4"}, "not an EN 319 411-1/-2 policy"),
        ("qes-natural", {"colour": "blue"}, "unknown key"),
        ("qes-natural", {"name": "QES Natural"}, "lowercase"),
        ("qseal-legal", {"qc_statements__type": "esign"}, "QCS-5.2-2"),
        ("qseal-legal", {"allow_admission": True}, "natural person"),
        (
            "upc-auth",
            {"qc_statements": {"compliance": True, "sscd": False, "type": "esign", "pds": True}},
            "not qualified",
        ),
        ("upc-auth", {"key_usage": ["contentCommitment"]}, "setting C"),
        ("upc-auth", {"allow_email": False}, "needs allow_email"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_profile_rule_refused(name: str, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(_with(name, **changes))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
