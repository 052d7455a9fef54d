"""Every MongoDB query the worker makes, and the typed views documents are parsed into.

Vocabulary: `acquire_*` takes runs for this worker, `release_*` gives claimed runs up (skipped,
missed, deferred or back to the queue), `extend_*_leases` renews, `reap_*` ends runs of workers
that stopped. The store knows documents and queries, nothing of handlers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import structlog
from bson import ObjectId, Timestamp
from pydantic import ValidationError
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError

from shared.db import JOBS, RUNS, STREAM_TOKENS, WORKERS, Collection, Database, Document
from shared.model import JobOptions, JobStatus, OverlapPolicy, RunStatus, RunTrigger
from worker.notify_policy import StreakEvent
from worker.outcomes import FAILED_STATUSES, Outcome
from worker.owner_store import OwnerSlotStore

DUPLICATE_KEY: Final = 11000
RUNNING: Final = RunStatus.RUNNING.value
PENDING: Final = RunStatus.PENDING.value
COMPLETED: Final = JobStatus.COMPLETED.value
NOT_COMPLETED: Final = {"$ne": COMPLETED}
# A completed job has no next slot.
COMPLETED_FIELDS: Final = {"status": COMPLETED, "nextRunAt": None}
FAILED_STATUS_VALUES: Final = frozenset(status.value for status in FAILED_STATUSES)
# Below every ObjectId: `activeRunIds > LOWEST_ID` matches jobs with an active run (an index range).
LOWEST_ID: Final = ObjectId(b"\x00" * 12)
_OPTION_FIELDS: Final = (
    "retry",
    "timeoutSeconds",
    "overlapPolicy",
    "misfirePolicy",
    "misfireGraceSeconds",
    "jitterSeconds",
)

log = structlog.get_logger("worker.store")
# (job id, version) whose unusable options were logged already: one line per job version.
_reported_options: set[tuple[Any, Any]] = set()


@dataclass(frozen=True, slots=True)
class JobView:
    """A `cron_jobs` document as the worker core uses it (parsed once, at the store)."""

    id: ObjectId
    owner_id: str
    name: str
    type: str
    # Exactly one schedule kind: a cron, an interval with its anchor, or a one-off.
    cron: str | None
    every: str | None
    anchor_at: datetime | None
    timezone: str
    enabled: bool
    version: Any
    next_run_at: datetime | None
    active_run_ids: tuple[ObjectId, ...]
    options: JobOptions
    # The stored document, for handlers (parsed into JobDocument when a run executes).
    raw: Document
    run_at: datetime | None = None
    # Bounds (worker/completion.py): slots within [startAt, endAt], at most maxRuns successes.
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_runs: int | None = None
    scheduled_success_count: int = 0
    status: JobStatus | None = None

    @property
    def overlap_skip(self) -> bool:
        """Whether overlap policy `skip` applies."""
        return self.options.overlap_policy is OverlapPolicy.SKIP


def parse_job(document: Document) -> JobView:
    """The view of a stored job; unusable options fall back to the defaults, logged."""
    fields = {key: document[key] for key in _OPTION_FIELDS if key in document}
    try:
        options = JobOptions.model_validate(fields)
    except ValidationError as error:
        options = JobOptions()
        key = (document.get("_id"), document.get("version"))
        if key not in _reported_options:
            _reported_options.add(key)
            log.error("job.invalid_options", job_id=str(key[0]), error=str(error.errors()[0]))
    active = document.get("activeRunIds")
    return JobView(
        id=document["_id"],
        owner_id=str(document.get("ownerId", "")),
        name=str(document.get("name", "")),
        type=str(document.get("type", "")),
        cron=_text_or_none(document.get("cron")),
        every=_text_or_none(document.get("every")),
        anchor_at=document.get("anchorAt"),
        timezone=str(document.get("timezone") or "UTC"),
        enabled=document.get("enabled") is True,
        version=document.get("version"),
        next_run_at=document.get("nextRunAt"),
        active_run_ids=tuple(active) if isinstance(active, list) else (),
        options=options,
        raw=document,
        run_at=document.get("runAt"),
        start_at=document.get("startAt"),
        end_at=document.get("endAt"),
        max_runs=_int_or_none(document.get("maxRuns")),
        scheduled_success_count=_int_or_none(document.get("scheduledSuccessCount")) or 0,
        status=_status(document.get("status")),
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _status(value: Any) -> JobStatus | None:
    try:
        return JobStatus(value)
    except ValueError:
        return None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class RunView:
    """A `cron_runs` document as the worker core uses it."""

    id: ObjectId
    job_id: ObjectId
    slot: str
    scheduled_for: datetime
    trigger: RunTrigger
    attempt: int
    status: RunStatus
    start_deadline: datetime | None
    worker_id: str | None
    started_at: datetime | None
    ended_at: datetime | None
    owner_id: str | None
    error: str | None
    # The stored document (a retry copies its identity fields).
    raw: Document
    # When it may start (a jittered slot: after its slot); None only for final records.
    not_before: datetime | None = None


def parse_run(document: Document) -> RunView:
    """The view of a stored run."""
    return RunView(
        id=document["_id"],
        job_id=document["jobId"],
        slot=str(document["slot"]),
        scheduled_for=document["scheduledFor"],
        trigger=RunTrigger(document.get("trigger", RunTrigger.SCHEDULE.value)),
        attempt=int(document.get("attempt", 1)),
        status=RunStatus(document["status"]),
        start_deadline=document.get("startDeadline"),
        worker_id=document.get("workerId"),
        started_at=document.get("startedAt"),
        ended_at=document.get("endedAt"),
        owner_id=document.get("ownerId"),
        error=document.get("error"),
        raw=document,
        not_before=document.get("notBefore"),
    )


@dataclass(frozen=True, slots=True)
class Advance:
    """Move a job's `nextRunAt` forward (`$max`) if no client wrote it since `version`.

    None: the schedule has no slot left (`nextRunAt` null); with `complete` the job is also
    `completed` (nothing was queued: its last slot is decided, or maxRuns is reached).
    """

    job_id: ObjectId
    version: Any
    next_run_at: datetime | None
    complete: bool = False


@dataclass(frozen=True, slots=True)
class Start:
    """The conditional start of a run on its job: the only gate of overlap `skip`."""

    run_id: ObjectId
    job: JobView
    # For a slot the schedule stage just queued: the job's `nextRunAt` advance, carried by
    # the start write instead of a write of its own.
    advance_to: datetime | None = None
    # A schedule slot or a retry of one: it does not start on a completed job.
    scheduled: bool = False


@dataclass(frozen=True, slots=True)
class Release:
    """A claimed run that does not start: final (`status` and `error`) or queued again."""

    run_id: ObjectId
    status: RunStatus
    error: str | None = None
    # For a run queued again (`pending`): when it is due; None keeps its `notBefore`.
    not_before: datetime | None = None
    # Queued again for its owner's cap: it was on time, so its start deadline no longer applies.
    lift_deadline: bool = False


class WorkerStore:
    """The worker's view of the database."""

    def __init__(self, db: Database, worker_id: str, *, owner_slots: bool = False) -> None:
        self.db = db
        self.worker_id = worker_id
        # Per-owner run slots (`CRON_MAX_RUNNING_PER_OWNER`), their own queries.
        self.owners = OwnerSlotStore(db, enabled=owner_slots)
        self.jobs: Collection = db[JOBS]
        self.runs: Collection = db[RUNS]
        self.workers: Collection = db[WORKERS]
        self.tokens: Collection = db[STREAM_TOKENS]

    # --- scheduling: due jobs become pending runs -----------------------------------------

    async def due_jobs(
        self, now: datetime, limit: int, exclude_owners: Iterable[str] = ()
    ) -> list[JobView]:
        """Up to `limit` enabled jobs whose `nextRunAt` has come (one range query, no sort),
        of owners other than `exclude_owners`."""
        query: Document = {"enabled": True, "nextRunAt": {"$lte": now}}
        if exclude_owners:
            query["ownerId"] = {"$nin": list(exclude_owners)}
        cursor = self.jobs.find(query, limit=limit)
        return [parse_job(document) async for document in cursor]

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

        A duplicate of (jobId, slot, attempt) means that slot (or attempt) is recorded already.
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

    async def present_runs(self, run_ids: Sequence[ObjectId]) -> set[ObjectId]:
        """Which of these run ids are stored."""
        cursor = self.runs.find({"_id": {"$in": list(run_ids)}}, projection={"_id": 1})
        return {document["_id"] async for document in cursor}

    async def advance_jobs(self, advances: Sequence[Advance]) -> int:
        """`$max` each job's `nextRunAt`, if enabled and unchanged by clients; how many matched.

        A job edited since it was read does not match: it is due again and the next pass plans
        it as it is now (its slots are recorded already, so nothing is planned twice).
        """
        if not advances:
            return 0
        operations = [UpdateOne(*_advance_job(advance)) for advance in advances]
        result = await self.jobs.bulk_write(operations, ordered=False)
        return result.matched_count

    async def complete_jobs(self, jobs: Sequence[tuple[ObjectId, Any]]) -> None:
        """Mark jobs (id, version as read) `completed`: their last slot was released unrun."""
        operations = [
            UpdateOne(
                {"_id": job_id, "version": version, "enabled": True, "status": NOT_COMPLETED},
                {"$set": COMPLETED_FIELDS},
            )
            for job_id, version in jobs
        ]
        if operations:
            await self.jobs.bulk_write(operations, ordered=False)

    async def park_job(self, job_id: ObjectId, version: Any, error: str) -> None:
        """Take a job whose schedule cannot be evaluated off the timetable (until edited)."""
        await self.jobs.update_one(
            {"_id": job_id, "version": version},
            {"$set": {"nextRunAt": None, "status": JobStatus.FAILED.value, "lastError": error}},
        )

    # --- claiming: the one start path ------------------------------------------------------

    async def due_pending(
        self, now: datetime, limit: int, exclude_owners: Iterable[str] = ()
    ) -> list[RunView]:
        """Up to `limit` pending runs whose `notBefore` has come, of owners other than
        `exclude_owners`."""
        query: Document = {"status": PENDING, "notBefore": {"$lte": now}}
        if exclude_owners:
            query["ownerId"] = {"$nin": list(exclude_owners)}
        cursor = self.runs.find(query, limit=limit)
        return [parse_run(document) async for document in cursor]

    async def count_backlog(self, now: datetime, cap: int) -> tuple[int, int]:
        """For the metrics sampler: (due backlog, pending-queue depth), each at most `cap`.

        The due backlog is what should have started by `now` and has not: enabled jobs due
        and not yet queued, plus pending runs whose `notBefore` has come. The queue depth is
        every pending run (also retries waiting for their backoff). Three index-backed counts
        (`due`, `pending`) that stop at `cap`: a huge backlog costs no more than a small one.
        """
        unqueued = await self.jobs.count_documents(
            {"enabled": True, "nextRunAt": {"$lte": now}}, limit=cap
        )
        waiting = await self.runs.count_documents(
            {"status": PENDING, "notBefore": {"$lte": now}}, limit=cap
        )
        queued = await self.runs.count_documents({"status": PENDING}, limit=cap)
        return min(cap, unqueued + waiting), queued

    async def earliest_pending_time(self, before: datetime) -> datetime | None:
        """The earliest `notBefore` of a pending run earlier than `before` (limit 1)."""
        found = await self.runs.find_one(
            {"status": PENDING, "notBefore": {"$lt": before}},
            projection={"_id": 0, "notBefore": 1},
            sort=[("notBefore", ASCENDING)],
        )
        return found["notBefore"] if found else None

    async def acquire_runs(
        self, candidates: Sequence[RunView], now: datetime, lease_until: datetime
    ) -> list[RunView]:
        """Take those of these runs that are still pending: ours, leased, started at `now`.

        One `update_many`; only when it took fewer than asked does one `find` tell which
        (another worker took the rest). Of several workers acquiring one run, one gets it.
        """
        if not candidates:
            return []
        ids = [run.id for run in candidates]
        taken = {
            "status": RUNNING,
            "workerId": self.worker_id,
            "leaseExpiresAt": lease_until,
            "startedAt": now,
        }
        result = await self.runs.update_many(
            {"_id": {"$in": ids}, "status": PENDING}, {"$set": taken}
        )
        if result.matched_count == len(ids):
            return [parse_run(run.raw | taken) for run in candidates]
        cursor = self.runs.find(
            {"_id": {"$in": ids}, "status": RUNNING, "workerId": self.worker_id}
        )
        return [parse_run(document) async for document in cursor]

    async def jobs_by_id(self, job_ids: Iterable[ObjectId]) -> dict[ObjectId, JobView]:
        """These jobs as they are now (absent: deleted)."""
        cursor = self.jobs.find({"_id": {"$in": list(job_ids)}})
        return {document["_id"]: parse_job(document) async for document in cursor}

    async def start_runs(self, starts: Sequence[Start]) -> int:
        """Add each run to its job's `activeRunIds`, if the job is as read; how many matched.

        The condition is the job's `version` as read (no client write since: not paused,
        rescheduled or deleted) and, for overlap `skip`, no active run. Operations apply one
        by one, so of two starts of one `skip` job the second does not match: on any number
        of workers this write is the only gate. `$addToSet` makes a retried write harmless.
        """
        if not starts:
            return 0
        operations = []
        for start in starts:
            job = start.job
            query: Document = {"_id": job.id, "version": job.version}
            if job.overlap_skip:
                query["activeRunIds.0"] = {"$exists": False}
            if start.scheduled:
                query["status"] = NOT_COMPLETED  # completed meanwhile: judged again, skipped
            update: Document = {"$addToSet": {"activeRunIds": start.run_id}}
            if job.enabled and job.status is not JobStatus.COMPLETED:
                update["$set"] = {"status": JobStatus.RUNNING.value}
            if start.advance_to is not None:
                update["$max"] = {"nextRunAt": start.advance_to}
            operations.append(UpdateOne(query, update))
        result = await self.jobs.bulk_write(operations, ordered=True)
        return result.matched_count

    async def release_runs(self, releases: Sequence[Release], now: datetime) -> None:
        """Give claimed runs up: record them final (skipped, missed) or queue them again."""
        operations = []
        for release in releases:
            fields: Document = {
                "status": release.status.value,
                "leaseExpiresAt": None,
                "startedAt": None,
            }
            if release.status is RunStatus.PENDING:
                fields["workerId"] = None
                if release.not_before is not None:
                    fields["notBefore"] = release.not_before
                if release.lift_deadline:
                    fields["startDeadline"] = None
            else:
                fields |= {"endedAt": now, "error": release.error}
            operations.append(
                UpdateOne(
                    {"_id": release.run_id, "status": RUNNING, "workerId": self.worker_id},
                    {"$set": fields},
                )
            )
        if operations:
            await self.runs.bulk_write(operations, ordered=False)

    # --- leases ------------------------------------------------------------------------------

    async def extend_run_leases(self, run_ids: Sequence[ObjectId], until: datetime) -> int:
        """Extend the leases of our running runs (one update); how many are still ours."""
        if not run_ids:
            return 0
        result = await self.runs.update_many(
            {"_id": {"$in": list(run_ids)}, "status": RUNNING, "workerId": self.worker_id},
            {"$set": {"leaseExpiresAt": until}},
        )
        return result.matched_count

    async def runs_still_ours(self, run_ids: Sequence[ObjectId]) -> set[ObjectId]:
        """Which of these runs still run under this worker's lease."""
        if not run_ids:
            return set()
        cursor = self.runs.find(
            {"_id": {"$in": list(run_ids)}, "status": RUNNING, "workerId": self.worker_id},
            projection={"_id": 1},
        )
        return {document["_id"] async for document in cursor}

    async def beat(self, fields: Document) -> None:
        """Upsert this worker's heartbeat document."""
        await self.workers.update_one({"_id": self.worker_id}, {"$set": fields}, upsert=True)

    async def last_seen(self, name: str) -> datetime | None:
        """When a worker called `name` last sent a heartbeat."""
        found = await self.workers.find_one(
            {"name": name}, projection={"lastSeenAt": 1}, sort=[("lastSeenAt", DESCENDING)]
        )
        return found.get("lastSeenAt") if found else None

    # --- recovery ------------------------------------------------------------------------------

    async def silent_workers(self, seen_before: datetime, seen_after: datetime) -> list[str]:
        """Ids of workers whose last heartbeat lies between the two instants, never stopped.

        Older ones need no look: their leases have expired, the lease reaper has them.
        """
        cursor = self.workers.find(
            {
                "lastSeenAt": {"$lt": seen_before, "$gte": seen_after},
                "stoppedAt": {"$exists": False},
                "_id": {"$ne": self.worker_id},
            },
            projection={"_id": 1},
        )
        return [document["_id"] async for document in cursor]

    async def reapable_runs(
        self, now: datetime, dead_workers: Sequence[str], limit: int
    ) -> list[RunView]:
        """Running runs whose lease expired, or whose worker stopped sending heartbeats."""
        expired: Document = {"status": RUNNING, "leaseExpiresAt": {"$lt": now}}
        query = expired
        if dead_workers:
            query = {"$or": [expired, {"status": RUNNING, "workerId": {"$in": list(dead_workers)}}]}
        cursor = self.runs.find(query, limit=limit)
        return [parse_run(document) async for document in cursor]

    async def reap_run(
        self, run: RunView, now: datetime, error: str, duration_ms: int | None
    ) -> bool:
        """Mark a run `abandoned` if still running under the worker it was found with."""
        found = await self.runs.find_one_and_update(
            {"_id": run.id, "status": RUNNING, "workerId": run.worker_id},
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

    async def jobs_with_active_runs(self, limit: int) -> list[JobView]:
        """Jobs listing runs in `activeRunIds` (an index range)."""
        cursor = self.jobs.find({"activeRunIds": {"$gt": LOWEST_ID}}, limit=limit)
        return [parse_job(document) async for document in cursor]

    async def runs_by_id(self, run_ids: Iterable[ObjectId]) -> dict[ObjectId, RunView]:
        """These runs (absent: deleted, e.g. by retention)."""
        cursor = self.runs.find({"_id": {"$in": list(run_ids)}})
        return {document["_id"]: parse_run(document) async for document in cursor}

    async def withdraw_retry(self, run_id: ObjectId, retry_id: ObjectId) -> None:
        """Delete a still-pending retry queued for `run_id`, unless that run ended in a failure.

        The reaper queues a retry before it abandons a run; when the abandon does not happen
        because the run's own worker finished it, only a failure of that run needs the retry.
        """
        run = await self.runs.find_one({"_id": run_id}, projection={"status": 1})
        if run is not None and run.get("status") in FAILED_STATUS_VALUES:
            return
        await self.runs.delete_one({"_id": retry_id, "status": PENDING})

    # --- finishing ---------------------------------------------------------------------------

    async def write_outcomes(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Record finished attempts: queued retries, then the runs, then their jobs.

        Every step may be repeated after a failure: retries are deduplicated by the unique
        index, run updates set the same values again, and job updates match only while the run
        is still in `activeRunIds` (so counters move once, also when the reaper came first). A
        job deleted meanwhile is never recreated (no upsert). Returns the late outcomes: runs
        reaped as `abandoned` while they still executed here (their lease was lost), whose
        record now says what really happened.
        """
        await self.insert_runs([outcome.retry for outcome in outcomes if outcome.retry])
        ours = [outcome for outcome in outcomes if outcome.update_run]
        late: list[Outcome] = []
        if ours:
            result = await self.runs.bulk_write(
                [UpdateOne(*_finish_run(o)) for o in ours], ordered=False
            )
            if result.matched_count < len(ours):
                late = await self._overwrite_reaped(ours)
        late_ids = {outcome.run_id for outcome in late}
        finished = [o for o in outcomes if o.job_status is not None and o.run_id not in late_ids]
        if finished:
            # Usually each job is enabled and this was its only active run: one update per run.
            # A run that completes its job goes first (each form matches only while the run is
            # listed and takes it out, so exactly one form applies per run).
            completing = [UpdateOne(*_complete_job(o)) for o in finished if o.completes]
            usual = await self.jobs.bulk_write(
                completing + [UpdateOne(*_finish_job(o, usual=True)) for o in finished]
            )
            if usual.matched_count < len(finished):
                # Paused jobs, or overlapping runs: the pair below matches once per remaining
                # run, in order, so that the last run of a job to finish sets `status`.
                await self.jobs.bulk_write(
                    [
                        UpdateOne(*parts)
                        for o in finished
                        for parts in (_finish_job(o, usual=True), _finish_job(o))
                    ]
                )
            await self._complete_counted(finished)
        for outcome in late:
            await self._settle_late(outcome)
        if self.owners.enabled:  # ended runs give their owner's slot back (reaped ones too)
            await self.owners.release([outcome.run_id for outcome in outcomes])
        return late

    async def _complete_counted(self, outcomes: Sequence[Outcome]) -> None:
        """Complete the jobs whose `maxRuns`-th success was counted by another form: two runs of
        one job finishing at once can each meet the count before the other's `$inc`, so neither
        completing form matches although the count reaches `maxRuns` (no-op when one did)."""
        writes = [
            UpdateOne(
                {
                    "_id": o.job_id,
                    "version": o.completes.version,
                    "status": NOT_COMPLETED,
                    "scheduledSuccessCount": {"$gte": o.completes.min_successes + 1},
                },
                {"$set": COMPLETED_FIELDS},
            )
            for o in outcomes
            if o.completes is not None and o.completes.min_successes is not None
        ]
        if writes:
            await self.jobs.bulk_write(writes, ordered=False)

    async def _overwrite_reaped(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Runs another worker reaped while they executed here get their real outcome."""
        runs = await self.runs_by_id(outcome.run_id for outcome in outcomes)
        late = []
        for outcome in outcomes:
            run = runs.get(outcome.run_id)
            if run is None or run.status is not RunStatus.ABANDONED:
                continue  # a repeated write (already final as ours) or gone
            if outcome.status is RunStatus.ABANDONED:
                continue
            await self.runs.update_one(
                {"_id": outcome.run_id, "status": RunStatus.ABANDONED.value},
                _finish_run(outcome)[1],
            )
            late.append(outcome)
        return late

    async def _settle_late(self, outcome: Outcome) -> None:
        """The job side of a late outcome: counted once, and corrected if the reaper counted.

        If the reaper's job update came first it counted a failure and queued a retry: a late
        success takes the failure back and withdraws the retry while it is still pending.
        """
        applied = await self.jobs.update_one(*_finish_job(outcome))
        if applied.matched_count or outcome.failed:
            return
        await self.jobs.update_one(
            {"_id": outcome.job_id, "failureCount": {"$gt": 0}}, {"$inc": {"failureCount": -1}}
        )
        run = await self.runs.find_one(
            {"_id": outcome.run_id}, projection={"slot": 1, "attempt": 1}
        )
        if run is not None:
            await self.runs.delete_one(
                {
                    "jobId": outcome.job_id,
                    "slot": run["slot"],
                    "attempt": int(run.get("attempt", 1)) + 1,
                    "status": PENDING,
                }
            )

    # --- failure notification and auto-pause (worker/notifications.py) ---------------------

    async def job_document(self, job_id: ObjectId) -> Document | None:
        """The job as stored now (None: deleted)."""
        return await self.jobs.find_one({"_id": job_id})

    async def auto_pause(
        self, job_id: ObjectId, streak: int, reason: str, now: datetime
    ) -> Document | None:
        """Pause an enabled job whose streak is still `streak`; the job after, or None.

        Like a client's pause it bumps `version` (so no start of it matches any more) and takes
        `nextRunAt` off the timetable; a slot already queued is recorded skipped (paused).
        """
        return await self.jobs.find_one_and_update(
            {"_id": job_id, "enabled": True, "failureStreak": streak},
            {
                "$set": {
                    "enabled": False,
                    "status": JobStatus.PAUSED.value,
                    "pausedAt": now,
                    "pausedReason": reason,
                    "nextRunAt": None,
                    "updatedAt": now,
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )

    async def claim_failure_notice(
        self, job_id: ObjectId, now: datetime, last_sent_by: datetime | None
    ) -> Document | None:
        """Take the one failure notice due (of any number of workers one gets it): the job
        before, whose `unnotifiedFailures` the notice counts, or None if none is due.

        Due: failures not yet notified, and no notice after `last_sent_by` (None: any time).
        """
        query: Document = {"_id": job_id, "unnotifiedFailures": {"$gt": 0}}
        if last_sent_by is not None:
            query["$or"] = [
                {"lastFailureNoticeAt": None},
                {"lastFailureNoticeAt": {"$lte": last_sent_by}},
            ]
        return await self.jobs.find_one_and_update(
            query,
            {
                "$set": {
                    "lastFailureNoticeAt": now,
                    "unnotifiedFailures": 0,
                    "streakNotified": True,
                }
            },
            return_document=ReturnDocument.BEFORE,
        )

    async def claim_recovery_notice(self, job_id: ObjectId) -> Document | None:
        """Take the recovery notice of a notified streak that ended: the job, or None."""
        return await self.jobs.find_one_and_update(
            {"_id": job_id, "streakNotified": True, "failureStreak": 0},
            {"$set": {"streakNotified": False}},
            return_document=ReturnDocument.AFTER,
        )

    async def record_notification(self, job_id: ObjectId, record: Document) -> None:
        """Keep the last notice's delivery on the job (`lastNotification`)."""
        await self.jobs.update_one({"_id": job_id}, {"$set": {"lastNotification": record}})

    # --- resume tokens ------------------------------------------------------------------------

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


def _finish_run(outcome: Outcome) -> tuple[Document, Document]:
    """Final state of a run still running (a repeated write, or a reaped run, does not match)."""
    return (
        {"_id": outcome.run_id, "status": RUNNING},
        {
            "$set": {
                "status": outcome.status.value,
                "startedAt": outcome.started_at,
                "endedAt": outcome.ended_at,
                "durationMs": outcome.duration_ms,
                "error": outcome.error,
                "result": outcome.result,
                "leaseExpiresAt": None,
            }
        },
    )


def _finish_job(outcome: Outcome, *, usual: bool = False) -> tuple[Document, Document]:
    """The job side of a finished run; matches only while the run is in `activeRunIds`.

    The usual form also sets `status`, and matches only if the job is enabled (a paused job
    stays paused) and no other run of it is active; the other form leaves `status` alone.
    """
    assert outcome.job_status is not None
    fields: Document = {"lastError": outcome.error, "lastDurationMs": outcome.duration_ms}
    counters = {
        "runCount": 1,
        "failureCount": 1 if outcome.failed else 0,
        "scheduledSuccessCount": 1 if outcome.counts_success else 0,
    }
    if outcome.streak is not None:
        # The failure streak moves with the run's own write, once (worker/notify_policy.py).
        if outcome.streak.event is StreakEvent.FAILED_SLOT:
            counters |= {"failureStreak": 1, "unnotifiedFailures": 1}
        else:
            fields["failureStreak"] = 0
    query: Document = {"_id": outcome.job_id, "activeRunIds": outcome.run_id}
    if usual:
        # A completed job stays completed (a run-now run, or a slot that overlapped the last).
        fields["status"] = outcome.job_status.value
        query |= {"enabled": True, "activeRunIds.1": {"$exists": False}, "status": NOT_COMPLETED}
    return (
        query,
        {
            "$pull": {"activeRunIds": outcome.run_id},
            "$max": {"lastRunAt": outcome.started_at},
            "$inc": counters,
            "$set": fields,
        },
    )


def _complete_job(outcome: Outcome) -> tuple[Document, Document]:
    """The job side of a run that completes its job (worker/completion.py): as `_finish_job`,
    and `completed` with no `nextRunAt`, if the job's version is as read and (maxRuns) enough
    slots had succeeded before: several workers finishing slots at once count exactly."""
    assert outcome.completes is not None
    query, update = _finish_job(outcome)
    query["version"] = outcome.completes.version
    if outcome.completes.min_successes is not None:
        query["scheduledSuccessCount"] = {"$gte": outcome.completes.min_successes}
    update["$set"] |= COMPLETED_FIELDS
    return query, update


def _advance_job(advance: Advance) -> tuple[Document, Document]:
    """A schedule pass's write of a job: `$max` its `nextRunAt`, or end its schedule."""
    query: Document = {
        "_id": advance.job_id,
        "version": advance.version,
        "enabled": True,
        "status": NOT_COMPLETED,
    }
    if advance.next_run_at is not None:
        return query, {"$max": {"nextRunAt": advance.next_run_at}}
    fields: Document = {"nextRunAt": None}
    if advance.complete:
        fields["status"] = COMPLETED
    return query, {"$set": fields}
