"""Every MongoDB query the worker makes: claims, advances, finishes, leases, heartbeats, tokens."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId, Timestamp
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError

from shared.db import JOBS, RUNS, STREAM_TOKENS, WORKERS, Collection, Database, Document
from shared.model import JobStatus, RunStatus
from worker.records import FAILED_STATUSES, Advance, Outcome

DUPLICATE_KEY = 11000
RUNNING = RunStatus.RUNNING.value
PENDING = RunStatus.PENDING.value
FAILED_STATUS_VALUES = frozenset(status.value for status in FAILED_STATUSES)
# Below every ObjectId: `activeRunIds > LOWEST_ID` matches jobs with an active run (an index range).
LOWEST_ID = ObjectId(b"\x00" * 12)


class WorkerStore:
    """The worker's view of the database; knows documents and queries, nothing of handlers."""

    def __init__(self, db: Database, worker_id: str) -> None:
        self.db = db
        self.worker_id = worker_id
        self.jobs: Collection = db[JOBS]
        self.runs: Collection = db[RUNS]
        self.workers: Collection = db[WORKERS]
        self.tokens: Collection = db[STREAM_TOKENS]

    # --- scheduled slots -------------------------------------------------------------------

    async def due_jobs(self, now: datetime, limit: int) -> list[Document]:
        """Up to `limit` enabled jobs whose `nextRunAt` has come (one query, no sort).

        With the `due` index MongoDB returns them oldest first; any order is correct because
        every claimed job moves to the future.
        """
        cursor = self.jobs.find({"enabled": True, "nextRunAt": {"$lte": now}}, limit=limit)
        return await cursor.to_list()

    async def due_jobs_by_id(self, job_ids: Sequence[ObjectId], now: datetime) -> list[Document]:
        """Those of these jobs that are still enabled and due, as they are now."""
        if not job_ids:
            return []
        cursor = self.jobs.find(
            {"_id": {"$in": list(job_ids)}, "enabled": True, "nextRunAt": {"$lte": now}}
        )
        return await cursor.to_list()

    async def earliest_job_time(self, before: datetime) -> datetime | None:
        """The earliest `nextRunAt` of an enabled job earlier than `before` (limit 1)."""
        found = await self.jobs.find_one(
            {"enabled": True, "nextRunAt": {"$lt": before}},
            projection={"_id": 0, "nextRunAt": 1},
            sort=[("nextRunAt", ASCENDING)],
        )
        return found["nextRunAt"] if found else None

    async def insert_runs(self, documents: Sequence[Document]) -> set[int]:
        """Insert run documents (unordered); the indexes refused as duplicates.

        A duplicate of (jobId, slot, attempt) means another worker recorded that slot first.
        """
        if not documents:
            return set()
        try:
            await self.runs.insert_many(list(documents), ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if error.details.get("writeConcernErrors") or any(
                item.get("code") != DUPLICATE_KEY for item in errors
            ):
                raise
            return {int(item["index"]) for item in errors}
        return set()

    async def existing_run_ids(self, run_ids: Iterable[ObjectId]) -> set[ObjectId]:
        """Which of these run ids exist (to tell our own retried inserts from lost races)."""
        cursor = self.runs.find({"_id": {"$in": list(run_ids)}}, projection={"_id": 1})
        return {document["_id"] async for document in cursor}

    async def advance_jobs(self, advances: Sequence[Advance]) -> int:
        """Move each job's `nextRunAt` forward (`$max`), if unchanged by clients since read.

        With a run id the job also becomes `running` with the run in `activeRunIds`. Every
        operation is idempotent, so a retry after an ambiguous failure is safe. Returns how
        many jobs matched.
        """
        if not advances:
            return 0
        operations = []
        for advance in advances:
            query: Document = {"_id": advance.job_id, "version": advance.version, "enabled": True}
            if advance.require_idle:
                query["activeRunIds.0"] = {"$exists": False}
            update: Document = {"$max": {"nextRunAt": advance.next_run_at}}
            if advance.run_id is not None:
                update["$set"] = {"status": JobStatus.RUNNING.value}
                update["$addToSet"] = {"activeRunIds": advance.run_id}
            operations.append(UpdateOne(query, update))
        result = await self.jobs.bulk_write(operations, ordered=False)
        return result.matched_count

    async def retract_runs(self, run_ids: Sequence[ObjectId]) -> None:
        """Delete runs this worker inserted but will not start (their job changed meanwhile)."""
        if run_ids:
            await self.runs.delete_many(
                {"_id": {"$in": list(run_ids)}, "workerId": self.worker_id, "status": RUNNING}
            )

    async def skip_runs(self, run_ids: Sequence[ObjectId], now: datetime, reason: str) -> None:
        """Turn runs this worker inserted as `running` into `skipped` records."""
        if run_ids:
            await self.runs.update_many(
                {"_id": {"$in": list(run_ids)}, "workerId": self.worker_id, "status": RUNNING},
                {
                    "$set": {
                        "status": RunStatus.SKIPPED.value,
                        "error": reason,
                        "endedAt": now,
                        "startedAt": None,
                        "leaseExpiresAt": None,
                    }
                },
            )

    async def park_job(self, job_id: ObjectId, version: Any, error: str) -> None:
        """Take a job whose schedule cannot be evaluated off the timetable (until edited)."""
        await self.jobs.update_one(
            {"_id": job_id, "version": version},
            {"$set": {"nextRunAt": None, "status": JobStatus.FAILED.value, "lastError": error}},
        )

    # --- pending runs (run-now, retries) -------------------------------------------------

    async def due_pending(self, now: datetime, limit: int) -> list[Document]:
        """Up to `limit` pending runs whose `notBefore` has come (ids only)."""
        cursor = self.runs.find(
            {"status": PENDING, "notBefore": {"$lte": now}},
            projection={"_id": 1, "jobId": 1},
            limit=limit,
        )
        return await cursor.to_list()

    async def earliest_pending_time(self, before: datetime) -> datetime | None:
        """The earliest `notBefore` of a pending run earlier than `before` (limit 1)."""
        found = await self.runs.find_one(
            {"status": PENDING, "notBefore": {"$lt": before}},
            projection={"_id": 0, "notBefore": 1},
            sort=[("notBefore", ASCENDING)],
        )
        return found["notBefore"] if found else None

    async def claim_pending(
        self, run_id: ObjectId, now: datetime, lease_until: datetime
    ) -> Document | None:
        """Take a pending run atomically (only one worker wins); the run as claimed."""
        return await self.runs.find_one_and_update(
            {"_id": run_id, "status": PENDING},
            {
                "$set": {
                    "status": RUNNING,
                    "workerId": self.worker_id,
                    "leaseExpiresAt": lease_until,
                    "startedAt": now,
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    async def defer_runs(self, run_ids: Sequence[ObjectId], not_before: datetime) -> None:
        """Put runs this worker claimed back in the queue, due again at `not_before`."""
        if run_ids:
            await self.runs.update_many(
                {"_id": {"$in": list(run_ids)}, "workerId": self.worker_id, "status": RUNNING},
                {
                    "$set": {
                        "status": PENDING,
                        "notBefore": not_before,
                        "workerId": None,
                        "leaseExpiresAt": None,
                        "startedAt": None,
                    }
                },
            )

    async def jobs_by_id(self, job_ids: Iterable[ObjectId]) -> dict[ObjectId, Document]:
        """The full documents of these jobs (absent: deleted)."""
        cursor = self.jobs.find({"_id": {"$in": list(job_ids)}})
        return {document["_id"]: document async for document in cursor}

    async def mark_started(self, starts: Sequence[tuple[ObjectId, ObjectId]]) -> None:
        """For (job id, run id) pairs: add the run to `activeRunIds`; `running` unless paused."""
        operations = []
        for job_id, run_id in starts:
            active = {"$addToSet": {"activeRunIds": run_id}}
            running = {**active, "$set": {"status": JobStatus.RUNNING.value}}
            operations.append(UpdateOne({"_id": job_id, "enabled": True}, running))
            operations.append(UpdateOne({"_id": job_id, "enabled": {"$ne": True}}, active))
        if operations:
            await self.jobs.bulk_write(operations, ordered=False)

    # --- finishing ---------------------------------------------------------------------------

    async def write_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Record finished attempts: queued retries, then the runs, then their jobs.

        Every step may be repeated after a failure: retries are deduplicated by the unique
        index, run updates set the same values again, and job updates match only while the run
        is still in `activeRunIds` (so counters move once, also when the reaper came first). A
        job deleted meanwhile is never recreated (no upsert).
        """
        await self.insert_runs([outcome.retry for outcome in outcomes if outcome.retry])
        run_operations = [_finish_run(outcome) for outcome in outcomes if outcome.update_run]
        if run_operations:
            await self.runs.bulk_write(run_operations, ordered=False)
        finished = [outcome for outcome in outcomes if outcome.job_status is not None]
        if not finished:
            return
        # Usually each job is enabled and this was its only active run: one update per run.
        usual = await self.jobs.bulk_write([_finish_job(o, usual=True) for o in finished])
        if usual.matched_count < len(finished):
            # Paused jobs, or overlapping runs: the pair below matches once per remaining run,
            # in order, so that the last run of a job to finish is the one that sets `status`.
            await self.jobs.bulk_write(
                [op for o in finished for op in (_finish_job(o, usual=True), _finish_job(o))]
            )

    # --- leases ------------------------------------------------------------------------------

    async def renew_leases(self, run_ids: Sequence[ObjectId], until: datetime) -> int:
        """Extend the leases of our running runs (one update); how many are still ours."""
        if not run_ids:
            return 0
        result = await self.runs.update_many(
            {"_id": {"$in": list(run_ids)}, "status": RUNNING, "workerId": self.worker_id},
            {"$set": {"leaseExpiresAt": until}},
        )
        return result.matched_count

    async def keep_ours(self, run_ids: Sequence[ObjectId], until: datetime) -> set[ObjectId]:
        """Which of these runs still run under our lease; renew those (after a slow pass)."""
        if not run_ids:
            return set()
        cursor = self.runs.find(
            {"_id": {"$in": list(run_ids)}, "status": RUNNING, "workerId": self.worker_id},
            projection={"_id": 1},
        )
        ours = [document["_id"] async for document in cursor]
        await self.renew_leases(ours, until)
        return set(ours)

    async def expired_runs(self, now: datetime, limit: int) -> list[Document]:
        """Running runs whose lease has expired (their worker stopped renewing)."""
        cursor = self.runs.find({"status": RUNNING, "leaseExpiresAt": {"$lt": now}}, limit=limit)
        return await cursor.to_list()

    async def abandon_expired(
        self, run: Document, now: datetime, error: str, duration_ms: int | None
    ) -> bool:
        """Mark an expired run `abandoned` unless someone else did (or it finished) first."""
        found = await self.runs.find_one_and_update(
            {"_id": run["_id"], "status": RUNNING, "leaseExpiresAt": {"$lt": now}},
            {
                "$set": {
                    "status": RunStatus.ABANDONED.value,
                    "endedAt": now,
                    "durationMs": duration_ms,
                    "error": error,
                    "leaseExpiresAt": None,
                }
            },
            projection={"_id": 1},
        )
        return found is not None

    async def jobs_with_active_runs(self, limit: int) -> list[Document]:
        """Jobs listing runs in `activeRunIds` (an index range), with what finishing needs."""
        cursor = self.jobs.find(
            {"activeRunIds": {"$gt": LOWEST_ID}},
            projection={"activeRunIds": 1, "retry": 1},
            limit=limit,
        )
        return await cursor.to_list()

    async def runs_by_id(self, run_ids: Iterable[ObjectId]) -> dict[ObjectId, Document]:
        """These run documents (absent: deleted, e.g. by retention)."""
        cursor = self.runs.find({"_id": {"$in": list(run_ids)}})
        return {document["_id"]: document async for document in cursor}

    async def withdraw_retry(self, run_id: ObjectId, retry_id: ObjectId) -> None:
        """Delete a still-pending retry queued for `run_id`, unless that run ended in a failure.

        The reaper queues a retry before it abandons a run; when the abandon does not happen
        because the run's own worker finished it, only a failure of that run needs the retry.
        """
        run = await self.runs.find_one({"_id": run_id}, projection={"status": 1})
        if run is not None and run.get("status") in FAILED_STATUS_VALUES:
            return
        await self.runs.delete_one({"_id": retry_id, "status": PENDING})

    # --- heartbeats and resume tokens --------------------------------------------------------

    async def beat(self, fields: Document) -> None:
        """Upsert this worker's heartbeat document."""
        await self.workers.update_one({"_id": self.worker_id}, {"$set": fields}, upsert=True)

    async def last_seen(self, name: str) -> datetime | None:
        """When a worker called `name` last sent a heartbeat."""
        found = await self.workers.find_one(
            {"name": name}, projection={"lastSeenAt": 1}, sort=[("lastSeenAt", DESCENDING)]
        )
        return found.get("lastSeenAt") if found else None

    async def load_token(self, key: str) -> Any:
        """The stored resume token for `key`, or None."""
        found = await self.tokens.find_one({"_id": key})
        return found.get("token") if found else None

    async def save_token(self, key: str, token: Any, now: datetime) -> None:
        """Store the last processed resume token for `key` (None forgets it)."""
        await self.tokens.update_one(
            {"_id": key}, {"$set": {"token": token, "updatedAt": now}}, upsert=True
        )

    async def operation_time(self) -> Timestamp:
        """The cluster time to start a change stream at: from `ping`, else the wall clock.

        Real MongoDB reports `operationTime`; servers that do not get the current second (a
        stream started there may replay up to one second of earlier events, which is harmless).
        """
        reply = await self.db.command("ping")
        found = reply.get("operationTime")
        return found if isinstance(found, Timestamp) else Timestamp(int(time.time()), 0)


def _finish_run(outcome: Outcome) -> UpdateOne:
    """Final state of a run, by `_id` alone.

    A run reaped meanwhile (its lease expired while this worker was cut off) is overwritten
    with what really happened; its queued retry still runs. Filtering on `_id` alone keeps
    the write an index lookup on servers that scan for compound filters (see the README).
    """
    return UpdateOne(
        {"_id": outcome.run_id},
        {
            "$set": {
                "status": outcome.status.value,
                "endedAt": outcome.ended_at,
                "durationMs": outcome.duration_ms,
                "error": outcome.error,
                "result": outcome.result,
                "leaseExpiresAt": None,
            }
        },
    )


def _finish_job(outcome: Outcome, *, usual: bool = False) -> UpdateOne:
    """The job side of a finished run; matches only while the run is in `activeRunIds`.

    The usual form also sets `status`, and matches only if the job is enabled (a paused job
    stays paused) and no other run of it is active; the other form leaves `status` alone.
    """
    assert outcome.job_status is not None
    fields: Document = {"lastError": outcome.error, "lastDurationMs": outcome.duration_ms}
    query: Document = {"_id": outcome.job_id, "activeRunIds": outcome.run_id}
    if usual:
        fields["status"] = outcome.job_status.value
        query |= {"enabled": True, "activeRunIds.1": {"$exists": False}}
    return UpdateOne(
        query,
        {
            "$pull": {"activeRunIds": outcome.run_id},
            "$max": {"lastRunAt": outcome.started_at},
            "$inc": {"runCount": 1, "failureCount": 1 if outcome.failed else 0},
            "$set": fields,
        },
    )


# --- metrics: the backlog sampler's bounded counts (worker.metrics.sample_backlog) -----------


async def count_backlog(store: WorkerStore, now: datetime, cap: int) -> tuple[int, int]:
    """Enabled jobs due at `now` and queued (pending) runs, each counted up to `cap`.

    Two index-backed counts (`due`, `pending`) that stop at `cap`, so a huge backlog costs no
    more than a bounded one.
    """
    due = await store.jobs.count_documents({"enabled": True, "nextRunAt": {"$lte": now}}, limit=cap)
    pending = await store.runs.count_documents({"status": PENDING}, limit=cap)
    return due, pending
