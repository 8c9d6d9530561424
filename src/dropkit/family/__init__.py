"""The dropout family's functional forms, one concept per file; re-exported by dropkit.functional."""
