"""ca.store."""
