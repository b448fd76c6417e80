"""Podium: live audio conversations for an audience of any size."""

__version__ = "0.1.0"
