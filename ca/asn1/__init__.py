"""ca.asn1."""
