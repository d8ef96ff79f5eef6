"""Property and bounded fuzz tests."""
