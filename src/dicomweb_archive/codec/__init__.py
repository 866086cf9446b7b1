"""Pixel codecs: decode stored frames, encode HTJ2K."""
