"""Transcode: rewrite an archive's stored frames as HTJ2K, beside them or in their place."""
