"""Store: where the archive's bytes live, written atomically."""
