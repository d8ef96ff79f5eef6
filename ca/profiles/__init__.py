"""ca.profiles."""
