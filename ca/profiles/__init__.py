"""Declarative certificate profiles (TOML in this package), validated once at load."""

from ca.profiles.profile import Profile, ProfileError, QCStatementsProfile, load_builtin_profiles, parse_profile

__all__ = ["Profile", "ProfileError", "QCStatementsProfile", "load_builtin_profiles", "parse_profile"]
