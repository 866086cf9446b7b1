"""Export: archived instances back to P10 files, in folders or ZIP streams."""
