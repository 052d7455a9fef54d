"""When a run was due, for its fire lag (`runner.due_at`): pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from shared.jitter import jittered_start
from shared.runs import manual_run, retry_run, scheduled_run
from worker.claiming import Claimed
from worker.runner import due_at
from worker.store import parse_job, parse_run


def test_fire_lag_counts_from_the_jittered_start_not_from_a_deferral() -> None:
    slot = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    job = parse_job(
        {"_id": ObjectId(), "ownerId": "o", "name": "j", "type": "noop", "jitterSeconds": 30}
    )
    run = scheduled_run(job, slot, now=slot, start_deadline=None)
    begins = jittered_start(job.id, slot, 30)
    # Deferred for the owner cap: its notBefore moved on; the lag still counts from its start.
    deferred = parse_run(run | {"notBefore": begins + timedelta(seconds=5)})
    assert due_at(Claimed(deferred, job)) == begins
    retry = parse_run(retry_run(run, not_before=slot + timedelta(seconds=40), now=slot))
    assert due_at(Claimed(retry, job)) == slot + timedelta(seconds=40)  # after its backoff
    manual = parse_run(manual_run(job, now=slot + timedelta(seconds=7)))
    assert due_at(Claimed(manual, job)) == slot + timedelta(seconds=7)
