"""Helpers shared by the tests: import them as `from _helpers.<module> import ...` (pytest puts tests/ on the path)."""
