"""Export: archived instances back to P10."""
