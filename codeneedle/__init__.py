"""Needle: local, private semantic code search."""

__version__ = "0.1.0"
