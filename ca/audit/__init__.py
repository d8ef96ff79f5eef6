"""ca.audit."""
