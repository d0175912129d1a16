"""Microlend: digital lending to micro and small businesses for small banks."""

__version__ = "0.1.0"
