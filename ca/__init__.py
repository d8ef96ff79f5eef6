"""CA core: profiles, issuance pipeline, storage, audit, CRL/OCSP."""
