"""Interpreting change events into due times, and the lookup/event race, without a database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from worker.streams import Timetable

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def settled() -> Timetable:
    timetable = Timetable()
    for due in (timetable.jobs, timetable.pending):
        due.lookup_started()
        due.lookup_done(T0 + timedelta(minutes=1))
    timetable.wake.clear()
    return timetable


def test_a_new_job_due_sooner_moves_the_wake_up_without_a_lookup() -> None:
    timetable = settled()
    timetable.on_job_change(
        {"operationType": "insert", "fullDocument": {"enabled": True, "nextRunAt": T0}}
    )
    assert timetable.jobs.at == T0
    assert not timetable.jobs.stale
    assert timetable.wake.is_set()


def test_a_later_or_paused_job_changes_nothing() -> None:
    timetable = settled()
    later = T0 + timedelta(hours=1)
    timetable.on_job_change(
        {"operationType": "insert", "fullDocument": {"enabled": True, "nextRunAt": later}}
    )
    timetable.on_job_change(
        {"operationType": "insert", "fullDocument": {"enabled": False, "nextRunAt": None}}
    )
    timetable.on_job_change({"operationType": "delete", "documentKey": {"_id": ObjectId()}})
    assert timetable.jobs.at == T0 + timedelta(minutes=1)
    assert not timetable.jobs.stale
    assert not timetable.wake.is_set()


def test_an_update_without_description_asks_for_a_lookup() -> None:
    timetable = settled()
    # What the local stand-in sends: update operators in documentKey, no updateDescription.
    timetable.on_job_change({"operationType": "update", "documentKey": {"$set": {"cron": "x"}}})
    assert timetable.jobs.stale
    assert timetable.wake.is_set()


def test_an_update_with_description_is_read_directly() -> None:
    timetable = settled()
    timetable.on_job_change(
        {
            "operationType": "update",
            "updateDescription": {"updatedFields": {"nextRunAt": T0, "cron": "*/5 * * * *"}},
        }
    )
    assert timetable.jobs.at == T0
    assert not timetable.jobs.stale


def test_worker_bookkeeping_updates_are_ignored() -> None:
    timetable = settled()
    fields = {"status": "idle", "lastRunAt": T0, "activeRunIds.0": ObjectId(), "runCount": 3}
    timetable.on_job_change(
        {"operationType": "update", "updateDescription": {"updatedFields": fields}}
    )
    assert not timetable.jobs.stale
    assert not timetable.wake.is_set()


def test_a_pause_asks_for_a_lookup() -> None:
    timetable = settled()
    fields = {"enabled": False, "nextRunAt": None, "status": "paused"}
    timetable.on_job_change(
        {"operationType": "update", "updateDescription": {"updatedFields": fields}}
    )
    assert timetable.jobs.stale


def test_a_dropped_collection_forgets_everything() -> None:
    timetable = settled()
    timetable.on_job_change({"operationType": "drop"})
    assert timetable.jobs.at is None
    assert timetable.pending.at is None
    assert timetable.jobs.due(T0)


def test_a_queued_run_wakes_the_worker_at_its_not_before() -> None:
    timetable = settled()
    document = {"status": "pending", "notBefore": T0 + timedelta(seconds=5)}
    timetable.on_run_change({"operationType": "insert", "fullDocument": document})
    assert timetable.pending.at == T0 + timedelta(seconds=5)
    assert not timetable.jobs.due(T0)


def test_an_event_during_a_lookup_is_not_overwritten_by_its_result() -> None:
    timetable = settled()
    timetable.jobs.lookup_started()
    timetable.jobs.heard(T0)  # arrives while the query is in flight
    timetable.jobs.lookup_done(T0 + timedelta(minutes=5))
    assert timetable.jobs.at == T0


def test_the_lookup_result_replaces_a_stale_time() -> None:
    timetable = settled()
    timetable.jobs.lookup_started()
    timetable.jobs.lookup_done(T0 + timedelta(minutes=5))
    assert timetable.jobs.at == T0 + timedelta(minutes=5)


async def test_the_wake_event_belongs_to_the_running_loop() -> None:
    timetable = Timetable()
    timetable.jobs.unknown()
    await asyncio.wait_for(timetable.wake.wait(), 1)


def test_a_resync_during_a_lookup_discards_its_answer() -> None:
    timetable = settled()
    timetable.jobs.lookup_started()
    timetable.resync()
    timetable.jobs.lookup_done(T0 + timedelta(minutes=5))
    assert timetable.jobs.at is None
    assert timetable.jobs.stale
