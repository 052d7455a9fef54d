"""Start jitter offsets: deterministic, inside the window, spread over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.jitter import JITTER_MAX_SECONDS, jittered_start, max_jitter_seconds, slot_offset
from shared.model import slot_key

SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def test_the_offset_is_stable_for_a_job_and_slot() -> None:
    job_id = ObjectId()
    assert slot_offset(job_id, "2026-05-01T08:00:00Z", 30) == slot_offset(
        str(job_id), "2026-05-01T08:00:00Z", 30
    )
    assert jittered_start(job_id, SLOT, 30) == SLOT + slot_offset(job_id, slot_key(SLOT), 30)


def test_a_known_offset_never_changes() -> None:
    # Pinned: the API's preview, every worker and every release must compute the same start.
    job_id = "6740a1f2c3d4e5f601234567"
    assert slot_offset(job_id, "2026-05-01T08:00:00Z", 30) == timedelta(milliseconds=17_526)


@settings(database=None, max_examples=300)
@given(
    job=st.binary(min_size=12, max_size=12).map(ObjectId),
    minute=st.integers(0, 10_000),
    jitter=st.integers(1, JITTER_MAX_SECONDS),
)
def test_the_offset_lies_in_the_window(job: ObjectId, minute: int, jitter: int) -> None:
    slot = SLOT + timedelta(minutes=minute)
    offset = slot_offset(job, slot_key(slot), jitter)
    assert timedelta(0) <= offset < timedelta(seconds=jitter)
    assert offset.microseconds % 1000 == 0  # whole milliseconds (BSON dates)


def test_no_jitter_means_no_offset() -> None:
    assert slot_offset(ObjectId(), "2026-05-01T08:00:00Z", 0) == timedelta(0)
    assert jittered_start(ObjectId(), SLOT, 0) == SLOT


def test_offsets_spread_jobs_sharing_a_slot_over_the_window() -> None:
    offsets = [
        slot_offset(ObjectId(), "2026-05-01T08:00:00Z", 30).total_seconds() for _ in range(3000)
    ]
    buckets = [0] * 10  # 3 s each
    for offset in offsets:
        buckets[int(offset // 3)] += 1
    assert all(200 <= count <= 400 for count in buckets), buckets  # ~300 each
    assert len(set(offsets)) > 2500


def test_one_job_gets_different_offsets_at_different_slots() -> None:
    job_id = ObjectId()
    offsets = {slot_offset(job_id, slot_key(SLOT + timedelta(minutes=m)), 30) for m in range(50)}
    assert len(offsets) > 40


def test_the_largest_jitter_is_half_the_shortest_interval_at_most_an_hour() -> None:
    assert max_jitter_seconds(timedelta(minutes=1)) == 30
    assert max_jitter_seconds(timedelta(seconds=1)) == 0
    assert max_jitter_seconds(timedelta(days=1)) == JITTER_MAX_SECONDS
