"""Job reads and mutations shared by the API and the admin CLI: owner-scoped, version-checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared import quota
from shared.bounds import next_or_none, runs_left
from shared.db import JOBS, REPORTS, RUNS, Database, Document
from shared.interval import anchor_of
from shared.job_schedule import SlotSchedule, schedule_of
from shared.model import (
    JobDocument,
    JobOptions,
    JobStatus,
    OverlapPolicy,
    RunDocument,
    RunStatus,
    RunTrigger,
)
from shared.runs import RunReason, manual_run, slot_record, utc_now

# Fields whose change moves the schedule: `nextRunAt` is recomputed in the same write.
SCHEDULE_FIELDS: Final = frozenset(
    {"cron", "every", "runAt", "timezone", "enabled", "startAt", "endAt", "maxRuns"}
)
# Fields whose change moves an interval's grid: `anchorAt` becomes `startAt`, else the edit time.
ANCHOR_FIELDS: Final = frozenset({"cron", "every", "runAt", "startAt"})
# Optimistic read-modify-write rounds before giving up under write contention.
WRITE_ATTEMPTS: Final = 5
DELETED_JOB_ERROR: Final = RunReason.JOB_DELETED.value
# `pausedReason` of a pause by a client (API, CLI, dashboard); the worker's is "auto: ...".
MANUAL_PAUSE: Final = "manual"
# Due slots an edit records one by one (`skipped`, "rescheduled"/"paused"); beyond, one summary.
MAX_EDIT_RECORDS: Final = 100
MAX_EDIT_COUNT: Final = 10_000
# A run-now reservation whose run is missing counts this long: the run is inserted right after
# the reservation, so an older one was left by a request that died in between.
RESERVATION_GRACE: Final = timedelta(seconds=30)
BUSY_RUN_STATUSES: Final = frozenset({RunStatus.PENDING.value, RunStatus.RUNNING.value})
QuotaExceededError = quota.QuotaExceededError


class JobNotFoundError(LookupError):
    """No such job (or it belongs to another owner)."""

    def __init__(self, job_id: ObjectId) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class VersionConflictError(Exception):
    """The job's version is not the expected one (a stale If-Match, or too much contention)."""

    def __init__(self, job_id: ObjectId, expected: int | None, actual: int | None) -> None:
        if expected is None:
            message = f"job {job_id} kept changing while being written; try again"
        else:
            message = f"job {job_id} is at version {actual}, not {expected}"
        super().__init__(message)
        self.job_id = job_id
        self.expected = expected
        self.actual = actual


class RunInProgressError(Exception):
    """Run-now refused: the job forbids overlaps and a run is active or already queued."""

    def __init__(self, job_id: ObjectId) -> None:
        super().__init__(
            f"job {job_id} is running (or a run is queued) and forbids overlapping runs"
        )
        self.job_id = job_id


class ProtectedTypeError(PermissionError):
    """The job's type is reserved (admin-only) and the caller may not change it."""

    def __init__(self, job_id: ObjectId, job_type: str) -> None:
        super().__init__(f"job type {job_type!r} is reserved for admins")
        self.job_id = job_id
        self.job_type = job_type


class DuplicateJobNameError(Exception):
    """The owner already has a job with this name."""

    def __init__(self, owner_id: str, name: str) -> None:
        super().__init__(f"owner {owner_id!r} already has a job named {name!r}")
        self.owner_id = owner_id
        self.name = name


@dataclass(frozen=True)
class JobSpec:
    """The writable part of a job, already validated by the caller.

    `payload_by_admin` is server-owned: the caller sets it from who validated the payload.
    """

    name: str
    type: str
    cron: str | None
    timezone: str
    payload: dict[str, Any]
    enabled: bool
    options: JobOptions
    payload_by_admin: bool = False
    # The interval schedule kind (exactly one of `cron` / `every` / `run_at` is set).
    every: str | None = None
    # The one-off schedule kind, and the bounds (shared/bounds.py).
    run_at: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_runs: int | None = None

    @classmethod
    def of(cls, job: JobDocument) -> JobSpec:
        """The writable part of a stored job."""
        return cls(
            name=job.name,
            type=job.type,
            cron=job.cron,
            timezone=job.timezone,
            payload=job.payload,
            enabled=job.enabled,
            options=job.options(),
            payload_by_admin=job.payload_by_admin,
            every=job.every,
            run_at=job.run_at,
            start_at=job.start_at,
            end_at=job.end_at,
            max_runs=job.max_runs,
        )

    def replace(self, **changes: Any) -> JobSpec:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def fields(self) -> Document:
        """The stored (camelCase) fields."""
        return {
            "name": self.name,
            "type": self.type,
            "cron": self.cron,
            "every": self.every,
            "runAt": self.run_at,
            "startAt": self.start_at,
            "endAt": self.end_at,
            "maxRuns": self.max_runs,
            "timezone": self.timezone,
            "payload": self.payload,
            "enabled": self.enabled,
            "payloadByAdmin": self.payload_by_admin,
            **self.options.model_dump(by_alias=True, mode="json"),
        }


def spec_schedule(spec: JobSpec, anchor_at: datetime | None) -> SlotSchedule:
    """The schedule a (validated) spec describes; `anchor_at` places an interval's grid."""
    return schedule_of(
        cron=spec.cron,
        every=spec.every,
        anchor_at=anchor_at,
        timezone=spec.timezone,
        run_at=spec.run_at,
        start_at=spec.start_at,
        end_at=spec.end_at,
    )


def stored_schedule(job: JobDocument) -> SlotSchedule:
    """The schedule of a stored job; ScheduleError if unusable."""
    return schedule_of(
        cron=job.cron,
        every=job.every,
        anchor_at=job.anchor_at,
        timezone=job.timezone,
        run_at=job.run_at,
        start_at=job.start_at,
        end_at=job.end_at,
    )


def next_run_at(
    spec: JobSpec, anchor_at: datetime | None, *, now: datetime, succeeded: int = 0
) -> datetime | None:
    """The first slot after `now` within the bounds; None for a disabled or completed job
    (no slot left, or `maxRuns` successful slots reached)."""
    if not spec.enabled or not runs_left(spec.max_runs, succeeded):
        return None
    return next_or_none(spec_schedule(spec, anchor_at), now)


def anchor_for(spec: JobSpec, now: datetime) -> datetime | None:
    """An interval's grid origin: `startAt` if set, else `now`; None for other kinds."""
    return anchor_of(spec.start_at or now) if spec.every is not None else None


def initial_status(spec: JobSpec, next_at: datetime | None) -> JobStatus:
    """Paused when disabled, completed when no slot is left, idle otherwise."""
    if not spec.enabled:
        return JobStatus.PAUSED
    return JobStatus.IDLE if next_at is not None else JobStatus.COMPLETED


def _scope(job_id: ObjectId, owner_id: str | None) -> Document:
    scope: Document = {"_id": job_id}
    if owner_id is not None:
        scope["ownerId"] = owner_id
    return scope


async def get_job(
    db: Database, job_id: ObjectId, owner_id: str | None = None
) -> JobDocument | None:
    """The job, if it exists and (when `owner_id` is given) belongs to that owner."""
    document = await db[JOBS].find_one(_scope(job_id, owner_id))
    return None if document is None else JobDocument.from_mongo(document)


async def list_jobs(
    db: Database,
    *,
    owner_id: str | None,
    limit: int = 50,
    after: ObjectId | None = None,
    enabled: bool | None = None,
    job_type: str | None = None,
    status: JobStatus | None = None,
) -> list[JobDocument]:
    """Jobs in `_id` order after the cursor `after`; `owner_id=None` lists every owner's."""
    query: Document = {}
    if owner_id is not None:
        query["ownerId"] = owner_id
    if after is not None:
        query["_id"] = {"$gt": after}
    if enabled is not None:
        query["enabled"] = enabled
    if job_type is not None:
        query["type"] = job_type
    if status is not None:
        query["status"] = status.value
    cursor = db[JOBS].find(query).sort("_id", ASCENDING).limit(limit)
    return [JobDocument.from_mongo(document) async for document in cursor]


async def count_jobs(db: Database, owner_id: str) -> int:
    """How many jobs the owner has."""
    return await db[JOBS].count_documents({"ownerId": owner_id})


async def create_job(
    db: Database,
    spec: JobSpec,
    *,
    owner_id: str,
    max_jobs: int | None = None,
    now: datetime | None = None,
) -> JobDocument:
    """Insert a new job at version 1; QuotaExceededError / DuplicateJobNameError.

    The owner's quota counter is taken first (exact under any concurrency, see shared/quota.py)
    and given back if the insert is refused (a duplicate name); after any other error the insert
    may have happened, so the unit stays taken (the quota errs on the safe side).
    `max_jobs=None` counts the job without a limit.
    """
    now = now or utc_now()
    await quota.take(db, owner_id, max_jobs)
    anchor = anchor_for(spec, now)
    next_at = next_run_at(spec, anchor, now=now)
    document: Document = {
        "_id": ObjectId(),
        "ownerId": owner_id,
        **spec.fields(),
        "anchorAt": anchor,
        "pausedAt": None if spec.enabled else now,
        "pausedReason": None if spec.enabled else MANUAL_PAUSE,
        "status": initial_status(spec, next_at).value,
        "nextRunAt": next_at,
        "lastRunAt": None,
        "lastError": None,
        "lastDurationMs": None,
        "activeRunIds": [],
        "runCount": 0,
        "failureCount": 0,
        "scheduledSuccessCount": 0,
        "version": 1,
        "createdAt": now,
        "updatedAt": now,
    }
    try:
        await db[JOBS].insert_one(document)
    except DuplicateKeyError:
        await quota.give_back(db, owner_id)
        raise DuplicateJobNameError(owner_id, spec.name) from None
    return JobDocument.from_mongo(document)


async def check_can_create(
    db: Database, spec: JobSpec, *, owner_id: str, max_jobs: int | None = None
) -> None:
    """Read-only: what `create_job` would refuse (QuotaExceededError, DuplicateJobNameError).

    For a dry-run; a concurrent create may still take the name or the last unit afterwards.
    """
    if max_jobs is not None and await count_jobs(db, owner_id) >= max_jobs:
        raise QuotaExceededError(owner_id, max_jobs)
    if await db[JOBS].find_one({"ownerId": owner_id, "name": spec.name}, {"_id": 1}):
        raise DuplicateJobNameError(owner_id, spec.name)


def _changes(current: JobDocument, spec: JobSpec, now: datetime) -> Document:
    """The `$set` turning `current` into `spec`; empty if nothing changes."""
    before = JobSpec.of(current).fields()
    changes = {key: value for key, value in spec.fields().items() if before.get(key) != value}
    if not changes:
        return {}
    anchor = current.anchor_at
    if ANCHOR_FIELDS & changes.keys():
        # A new interval (or a switch of kind) starts its grid at startAt or now; others have
        # no anchor.
        anchor = anchor_for(spec, now)
        changes["anchorAt"] = anchor
    if SCHEDULE_FIELDS & changes.keys():
        succeeded = current.scheduled_success_count
        changes["nextRunAt"] = next_run_at(spec, anchor, now=now, succeeded=succeeded)
        changes |= _completion_change(current, spec, changes["nextRunAt"])
    if "enabled" in changes:
        changes["status"] = initial_status(spec, changes["nextRunAt"]).value
        changes["pausedAt"] = None if spec.enabled else now
        # A client's pause is manual; a resume clears the reason and starts a new streak.
        changes["pausedReason"] = None if spec.enabled else MANUAL_PAUSE
        if spec.enabled:
            changes["failureStreak"] = 0
    if "notify" in changes:
        # Notices count failures since the last notice, or since notices were (re)configured.
        changes["unnotifiedFailures"] = 0
    changes["updatedAt"] = now
    return changes


def _completion_change(current: JobDocument, spec: JobSpec, next_at: datetime | None) -> Document:
    """An edit that leaves no slot completes an enabled job; one that gives a completed job
    slots again reactivates it (`idle`)."""
    if not spec.enabled:
        return {}
    if next_at is None:
        return {"status": JobStatus.COMPLETED.value}
    if current.status is JobStatus.COMPLETED:
        return {"status": JobStatus.IDLE.value}
    return {}


async def update_job(
    db: Database,
    job_id: ObjectId,
    mutate: Callable[[JobDocument], JobSpec],
    *,
    owner_id: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> JobDocument:
    """Read the job, let `mutate` compute its new writable state, write it if still unchanged.

    Each write is one `find_one_and_update` conditioned on the version read, so no concurrent
    change is lost: with `expected_version` a mismatch raises VersionConflictError; without it
    the read-modify-write is retried. Exceptions from `mutate` propagate; a change of cron,
    timezone or enabled recomputes `nextRunAt` (and pause/resume sets `status`) in that write.
    Nothing changes (and the version stays) when the new state equals the stored one.
    """
    now = now or utc_now()  # one instant for the write and the slots it records
    for _ in range(WRITE_ATTEMPTS):
        current = await get_job(db, job_id, owner_id)
        if current is None:
            raise JobNotFoundError(job_id)
        if expected_version is not None and current.version != expected_version:
            raise VersionConflictError(job_id, expected_version, current.version)
        spec = mutate(current)
        changes = _changes(current, spec, now)
        if not changes:
            return current
        try:
            updated = await db[JOBS].find_one_and_update(
                {**_scope(job_id, owner_id), "version": current.version},
                {"$set": changes, "$inc": {"version": 1}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            raise DuplicateJobNameError(current.owner_id, spec.name) from None
        if updated is not None:
            job = JobDocument.from_mongo(updated)
            if "nextRunAt" in changes:
                await _record_due_slots(db, current, changes, now)
            if changes.get("enabled") is True:
                await _record_paused_slots(db, current, job, now)
            return job
    raise VersionConflictError(job_id, None, None)


async def _record_due_slots(
    db: Database, before: JobDocument, changes: Document, now: datetime
) -> None:
    """Slots that were due but not yet queued when an edit moved the schedule: `skipped`.

    A pause or a new cron/timezone recomputes `nextRunAt` from now; the slots between the old
    `nextRunAt` and now (a backlog while no worker ran, or a slot racing the edit) get a record
    with the reason, so every due slot ends with one. A slot a worker queued first is a
    duplicate (the unique index) and is left to the worker, which judges it on the edited job.
    """
    if not before.enabled or before.next_run_at is None or before.next_run_at > now:
        return
    reason = RunReason.PAUSED if changes.get("enabled") is False else RunReason.RESCHEDULED
    try:
        schedule = stored_schedule(before)
    except ValueError:
        return  # the old schedule is unusable: it had no slots to lose
    await _record_slots(
        db,
        before,
        schedule,
        start=before.next_run_at,
        end=now,
        outcome=(RunStatus.SKIPPED, reason),
    )


async def _record_paused_slots(
    db: Database, before: JobDocument, after: JobDocument, now: datetime
) -> None:
    """On resume, an interval job's slots that fell while it was paused: `missed`.

    An interval continues on the same grid (its anchor does not move on resume), so every slot
    between the pause and now is named in the history instead of vanishing; none of them runs
    (never a burst): the next run is the first slot after now. A cron job's resume starts from
    now without records, as before intervals existed. A one-off whose `runAt` fell in the
    pause is recorded `missed` the same way (the job is then `completed`).
    """
    if before.enabled or before.paused_at is None:
        return
    if after.every is None and after.run_at is None:
        return
    # An `every` edited while paused starts its grid at the edit: its anchor never fired.
    since = max(before.paused_at, after.anchor_at or before.paused_at)
    try:
        schedule = stored_schedule(after)
        first = schedule.next_after(since)
    except ValueError:
        return
    outcome = (RunStatus.MISSED, RunReason.PAUSED_GAP)
    await _record_slots(db, after, schedule, start=first, end=now, outcome=outcome)


async def _record_slots(
    db: Database,
    job: JobDocument,
    schedule: SlotSchedule,
    *,
    start: datetime,
    end: datetime,
    outcome: tuple[RunStatus, RunReason],
) -> None:
    """One final record per slot in [start, end], made at `end` (the edit's instant); beyond
    MAX_EDIT_RECORDS, one summary.

    A slot recorded already (by a worker, or a concurrent edit) is a duplicate of the unique
    `(jobId, slot, attempt)` index and keeps its record.
    """
    status, reason = outcome
    try:
        slots = schedule.slots_between(start, end, MAX_EDIT_RECORDS + 1)
    except ValueError:
        return
    records = [slot_record(job, slot, status, reason, now=end) for slot in slots[:MAX_EDIT_RECORDS]]
    if len(slots) > MAX_EDIT_RECORDS:
        rest = schedule.slots_between(slots[MAX_EDIT_RECORDS], end, MAX_EDIT_COUNT)
        summary = slot_record(job, rest[0], status, reason, now=end, missed_count=len(rest))
        records.append(summary)
    if records:
        try:
            await db[RUNS].insert_many(records, ordered=False)
        except BulkWriteError as error:
            if any(item.get("code") != 11000 for item in error.details.get("writeErrors", [])):
                raise


async def set_enabled(
    db: Database,
    job_id: ObjectId,
    *,
    enabled: bool,
    owner_id: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> JobDocument:
    """Pause (`enabled=False`) or resume a job; recomputes `nextRunAt`; a no-op if already so."""
    return await update_job(
        db,
        job_id,
        lambda job: JobSpec.of(job).replace(enabled=enabled),
        owner_id=owner_id,
        expected_version=expected_version,
        now=now,
    )


async def delete_job(
    db: Database,
    job_id: ObjectId,
    *,
    owner_id: str | None = None,
    expected_version: int | None = None,
    protected_types: Collection[str] = (),
    now: datetime | None = None,
) -> JobDocument:
    """Delete the job and mark its pending runs `skipped` ("job deleted"); returns the job.

    A run already in progress is left to finish (the worker never recreates a deleted job).
    A job of one of `protected_types` is not deleted (ProtectedTypeError): the type is part of
    the delete's filter, so a concurrent change of type cannot slip through.
    """
    query = _scope(job_id, owner_id)
    if expected_version is not None:
        query["version"] = expected_version
    if protected_types:
        query["type"] = {"$nin": sorted(protected_types)}
    deleted = await db[JOBS].find_one_and_delete(query)
    if deleted is None:
        current = await get_job(db, job_id, owner_id)
        if current is None:
            raise JobNotFoundError(job_id)
        if current.type in protected_types:
            raise ProtectedTypeError(job_id, current.type)
        raise VersionConflictError(job_id, expected_version, current.version)
    await quota.give_back(db, deleted["ownerId"])
    now = now or utc_now()
    await db[RUNS].update_many(
        {"jobId": job_id, "status": RunStatus.PENDING.value},
        {"$set": {"status": RunStatus.SKIPPED.value, "error": DELETED_JOB_ERROR, "endedAt": now}},
    )
    return JobDocument.from_mongo(deleted)


async def queue_run_now(
    db: Database,
    job: JobDocument,
    *,
    now: datetime | None = None,
    trigger: RunTrigger = RunTrigger.MANUAL,
) -> ObjectId:
    """Insert a pending manual run of `job` (see docs/design.md "Run-now"); returns its id.

    With overlap policy `skip`, RunInProgressError if a run is active or a manual run is
    already queued (so repeated taps do not pile up runs that would only be skipped).
    `trigger` TEST queues a test run instead, under the same rule (the two share the one
    queued place of a `skip` job).
    """
    now = now or utc_now()
    run_id = ObjectId()
    if job.overlap_policy is OverlapPolicy.SKIP:
        await _reserve_queued_run(db, job, run_id)
    await db[RUNS].insert_one(manual_run(job, now=now, run_id=run_id, trigger=trigger))
    return run_id


async def _reserve_queued_run(db: Database, job: JobDocument, run_id: ObjectId) -> None:
    """Make `run_id` the job's `queuedRunId`, or RunInProgressError if a run is busy.

    Checking for a busy run and queueing one are two operations, and there are no transactions:
    the reservation is a compare-and-set on the `queuedRunId` read (and on no active run), so of
    concurrent requests exactly one wins. The worker needs not clear it: a reservation whose run
    is no longer pending or running is simply replaced by the next request.
    """
    current: JobDocument | None = job
    for _ in range(WRITE_ATTEMPTS):
        if current is None:
            raise JobNotFoundError(job.id)
        held = current.queued_run_id
        if current.active_run_ids or (held is not None and await _run_is_busy(db, held)):
            raise RunInProgressError(job.id)
        reserved = await db[JOBS].find_one_and_update(
            {"_id": job.id, "queuedRunId": held, "activeRunIds.0": {"$exists": False}},
            {"$set": {"queuedRunId": run_id}},
            projection={"_id": 1},
        )
        if reserved is not None:
            return
        current = await get_job(db, job.id)  # changed since read (or a stale `job` was passed)
    raise RunInProgressError(job.id)


async def _run_is_busy(db: Database, run_id: ObjectId) -> bool:
    """Whether a reserved run-now run is still pending or running."""
    run = await db[RUNS].find_one({"_id": run_id}, projection={"status": 1})
    if run is None:
        # Reserved but not inserted yet, unless its request died in between (or it expired).
        return run_id.generation_time > datetime.now(UTC) - RESERVATION_GRACE
    return run.get("status") in BUSY_RUN_STATUSES


@dataclass(frozen=True)
class RunFilter:
    """Which of a job's runs to list: any of `statuses`, one trigger, a `scheduledFor` range.

    `since` is inclusive and `until` exclusive; an empty filter lists every run.
    """

    statuses: tuple[RunStatus, ...] = ()
    trigger: RunTrigger | None = None
    since: datetime | None = None
    until: datetime | None = None

    def query(self) -> Document:
        """The filter's part of a `cron_runs` query."""
        query: Document = {}
        if self.statuses:
            query["status"] = {"$in": [status.value for status in self.statuses]}
        if self.trigger is not None:
            query["trigger"] = self.trigger.value
        scheduled: Document = {}
        if self.since is not None:
            scheduled["$gte"] = self.since
        if self.until is not None:
            scheduled["$lt"] = self.until
        if scheduled:
            query["scheduledFor"] = scheduled
        return query


async def list_runs(
    db: Database,
    job_id: ObjectId,
    *,
    limit: int = 50,
    before: ObjectId | None = None,
    which: RunFilter | None = None,
    owner_id: str | None = None,
) -> list[RunDocument]:
    """The job's runs, newest first (`_id` descending), older than the cursor `before`.

    Runs outlive their job (until retention), so `owner_id` scopes them by their own `ownerId`.
    """
    query: Document = {"jobId": job_id, **(which or RunFilter()).query()}
    if owner_id is not None:
        query["ownerId"] = owner_id
    if before is not None:
        query["_id"] = {"$lt": before}
    cursor = db[RUNS].find(query).sort("_id", DESCENDING).limit(limit)
    return [RunDocument.model_validate(document) async for document in cursor]


async def has_runs(db: Database, job_id: ObjectId, *, owner_id: str | None = None) -> bool:
    """Whether any run of the job (possibly deleted) is still kept for this owner."""
    query: Document = {"jobId": job_id}
    if owner_id is not None:
        query["ownerId"] = owner_id
    return await db[RUNS].find_one(query, projection={"_id": 1}) is not None


async def list_reports(
    db: Database,
    job_id: ObjectId,
    *,
    owner_id: str | None = None,
    limit: int = 50,
    before: ObjectId | None = None,
) -> list[Document]:
    """The job's stored reports (raw `reports` documents), newest first."""
    query: Document = {"jobId": job_id}
    if owner_id is not None:
        query["ownerId"] = owner_id
    if before is not None:
        query["_id"] = {"$lt": before}
    cursor = db[REPORTS].find(query).sort("_id", DESCENDING).limit(limit)
    return [document async for document in cursor]
