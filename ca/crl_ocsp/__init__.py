"""ca.crl_ocsp."""
