"""Tests of podium.testing: the speech and network-impairment helpers."""
