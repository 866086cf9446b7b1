"""Instances already in an archive, stored or sent again through the conversion's transforms."""
