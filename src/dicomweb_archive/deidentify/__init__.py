"""De-identification per PS3.15 Annex E, driven by the standard's Table E.1-1 as data."""
