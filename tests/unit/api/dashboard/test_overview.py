"""Pure parts of the overview: failure ratio, percentiles, snapshot lifetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.dashboard.overview import Outcomes, Snapshot, _percentile, snapshot_lifetime


def _snapshot(compute_ms: float) -> Snapshot:
    empty = Outcomes({})
    return Snapshot(datetime.now(UTC), compute_ms, {}, empty, empty, None, None, 0, 0, 0)


def test_failure_ratio_counts_attempts_that_ran() -> None:
    outcomes = Outcomes({"succeeded": 6, "failed": 1, "timeout": 1, "skipped": 5, "missed": 3})
    assert outcomes.failure_ratio == 2 / 8
    assert outcomes.total == 16
    assert Outcomes({"skipped": 2}).failure_ratio is None


def test_percentiles() -> None:
    values = [float(value) for value in range(1, 101)]
    assert _percentile(values, 0.5) == 50.5
    assert _percentile(values, 0.99) == 99.01
    assert _percentile([7.0], 0.99) == 7.0
    assert _percentile([], 0.5) is None


def test_a_slow_snapshot_lives_longer_so_the_database_is_busy_at_most_a_fifth_of_the_time() -> None:
    assert snapshot_lifetime(_snapshot(100)) == timedelta(seconds=5)
    assert snapshot_lifetime(_snapshot(3000)) == timedelta(seconds=15)
