"""Unit tests (pure Python, no HSM or database)."""
