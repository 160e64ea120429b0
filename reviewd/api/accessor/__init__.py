"""Accessors: ways of reading and writing the bytes behind resource identifiers."""
