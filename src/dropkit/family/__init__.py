"""The dropout family, one variant per file (its function and module together); re-exported by
dropkit.functional and dropkit.nn. registry.py reads what the classes declare."""

__all__: list[str] = []
