"""Helpers for tests and benchmarks (fake clock, polling, speech, network impairment), imported by them only."""

from podium.testing.clock import FakeClock, wait_all_tasks_blocked
from podium.testing.eventually import eventually, eventually_sync

__all__ = ["FakeClock", "eventually", "eventually_sync", "wait_all_tasks_blocked"]
