"""Plain helper modules shared by tests (fixtures live in tests/conftest.py)."""
