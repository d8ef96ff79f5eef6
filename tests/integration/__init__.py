"""Integration tests on real databases and key backends."""
