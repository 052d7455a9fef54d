"""Start jitter: where in its jitter window a job's slot starts (pure, shared by API and worker).

A job with `jitterSeconds > 0` starts each slot at a deterministic offset in [0, jitterSeconds)
after the nominal slot. The offset is a stable hash of (job id, slot key), so the API's preview,
every worker and every retry of a computation agree without storing anything, while jobs that
share a slot ("08:00" for ten thousand users) spread evenly over the window.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Final

from shared.model import slot_key

JITTER_MAX_SECONDS: Final = 3600
_HASH_BYTES: Final = 8
_HASH_RANGE: Final = 2 ** (8 * _HASH_BYTES)


def slot_offset(job_id: object, slot_key: str, jitter_seconds: float) -> timedelta:
    """The offset of a slot's start in [0, jitter_seconds), stable for (job id, slot key)."""
    window_ms = int(jitter_seconds * 1000)  # whole milliseconds: BSON dates keep no more
    if window_ms <= 0:
        return timedelta(0)
    digest = hashlib.blake2b(f"{job_id}|{slot_key}".encode(), digest_size=_HASH_BYTES).digest()
    fraction = int.from_bytes(digest, "big") / _HASH_RANGE  # uniform in [0, 1)
    return timedelta(milliseconds=int(fraction * window_ms))


def jittered_start(job_id: object, slot: datetime, jitter_seconds: float) -> datetime:
    """When the slot `slot` of a job starts (its `notBefore`): the slot plus its offset."""
    return slot + slot_offset(job_id, slot_key(slot), jitter_seconds)


def max_jitter_seconds(shortest_interval: timedelta) -> int:
    """The largest jitter a schedule allows: half its shortest interval, at most an hour.

    Half keeps a slot's start before its next slot's window opens, so slots of one job never
    swap order and the start deadline stays inside the interval.
    """
    return min(JITTER_MAX_SECONDS, int(shortest_interval.total_seconds() // 2))
