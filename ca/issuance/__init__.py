"""ca.issuance."""
