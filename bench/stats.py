"""Percentiles and fire figures (lag, duplicates, missing), computed the same way for both."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Start:
    """One handler start: which job, for which slot (epoch s), when it started (epoch s)."""

    key: str
    scheduled: float
    started: float

    @property
    def lag(self) -> float:
        """Start minus scheduled time, in seconds."""
        return self.started - self.scheduled


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(values)))
    return values[min(rank, len(values)) - 1]


def lag_summary_ms(lags_seconds: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max (and mean, count) of lags, in milliseconds."""
    ordered = sorted(value * 1000 for value in lags_seconds)
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.50), 1),
        "p95": round(percentile(ordered, 0.95), 1),
        "p99": round(percentile(ordered, 0.99), 1),
        "max": round(ordered[-1], 1) if ordered else math.nan,
        "mean": round(sum(ordered) / len(ordered), 1) if ordered else math.nan,
    }


def fire_figures(starts: Sequence[Start], expected: set[tuple[str, float]]) -> dict[str, object]:
    """Lag percentiles, duplicates and missing (job, slot) pairs against the expected set.

    A start counts towards lag once per (job, slot); extra starts of the same pair are
    duplicates. Starts for slots outside `expected` are counted as `unexpected`.
    """
    seen: Counter[tuple[str, float]] = Counter()
    first: dict[tuple[str, float], Start] = {}
    for start in sorted(starts, key=lambda s: s.started):
        pair = (start.key, start.scheduled)
        seen[pair] += 1
        first.setdefault(pair, start)
    duplicates = sum(count - 1 for count in seen.values() if count > 1)
    hits = [first[pair] for pair in first if pair in expected]
    return {
        "expected": len(expected),
        "started": len(hits),
        "duplicates": duplicates,
        "missing": len(expected - set(first)),
        "unexpected": len(set(first) - expected),
        "lag_ms": lag_summary_ms(s.lag for s in hits),
    }


def herd_figures(starts: Sequence[Start], keys: Sequence[str], slot: float) -> dict[str, object]:
    """Fire figures for a herd (every job due at `slot`) plus time-to-last-start and fires/s."""
    figures = fire_figures(starts, {(key, slot) for key in keys})
    in_slot = [s.started for s in starts if s.scheduled == slot]
    if in_slot:
        last = max(in_slot) - slot
        figures["last_start_after_slot_s"] = round(last, 3)
        figures["first_start_after_slot_s"] = round(min(in_slot) - slot, 3)
        figures["fires_per_s"] = (
            round(len(set(s.key for s in starts)) / last, 1) if last > 0 else None
        )
    return figures
