"""Tests of the hsm package (key backends)."""
