"""Convert: orchestrate P10 inputs into an archive."""
