"""Helpers for tests and benchmarks (speech, network impairment), imported by them only."""
