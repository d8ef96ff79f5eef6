"""QTSP engine test suite."""
