"""Model: archive paths, multipart framing and study-level documents; no IO."""
