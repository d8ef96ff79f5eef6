"""Errors raised by :mod:`ca.asn1`."""

from __future__ import annotations

__all__ = ["Asn1DecodeError", "Asn1EncodeError"]


class Asn1EncodeError(ValueError):
    """A value cannot be encoded as the ASN.1 type the standard asks for (one-line message)."""


class Asn1DecodeError(ValueError):
    """Input is not the DER encoding of the expected ASN.1 structure (one-line message)."""
