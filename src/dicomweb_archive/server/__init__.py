"""Serve: a Starlette DICOMweb server over an archive (needs the ``server`` extra)."""
