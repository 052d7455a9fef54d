"""The schedule stage: due jobs become `pending` runs. It never starts anything.

For each due job: the latest due slot is queued as a `pending` run carrying its start deadline,
earlier due slots are recorded `missed` (bounded), and `nextRunAt` moves forward with `$max`.
No slot outside the job's bounds (`startAt`, `endAt`) is ever queued; when none is left after
the queued one, `nextRunAt` becomes null (worker/completion.py completes the job when that
last slot is decided), and a job with `maxRuns` successes reached is `completed` here.
The unique `(jobId, slot, attempt)` index keeps one record per slot whatever the number of
workers. Slot arithmetic is pure (the functions below the class).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final

import structlog
from bson import ObjectId

from shared.bounds import next_or_none
from shared.db import Document
from shared.jitter import jittered_start
from shared.job_schedule import SlotSchedule
from shared.model import MisfirePolicy, RunStatus
from shared.runs import RunReason, scheduled_run, slot_record, utc_now
from shared.settings import Settings
from worker.backoff import persist
from worker.completion import BoundedKey, bounded_key, bounded_schedule, max_runs_reached
from worker.fairness import SecondReads, heavy_owners, job_owner, merge_unique
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.store import Advance, JobView, RunView, WorkerStore, parse_run

_SECOND: Final = timedelta(seconds=1)
# Slots fetched per step while looking for the latest due slot.
_SEARCH_STEP: Final = 256
# Missed slots beyond the individual records are counted up to this many (a lower bound
# beyond): counting walks the schedule, and a backlog of a seconds-cron can be huge.
MISSED_COUNT_CAP: Final = 10_000
# A slot is on time if it starts within this share of the job's interval at that slot
# (at least one second, at most CRON_MISFIRE_THRESHOLD_SECONDS).
ON_TIME_SHARE: Final = 0.1

log = structlog.get_logger("worker.schedule")


@dataclass
class Plan:
    """What a schedule pass will record for a batch of due jobs read a moment ago."""

    jobs: list[JobView]
    now: datetime
    # More jobs may be due than this plan covers: the runner plans again at once.
    more: bool = False
    documents: list[Document] = field(default_factory=list)
    # (index in `documents`, job) of each queued run.
    queued: list[tuple[int, JobView]] = field(default_factory=list)
    advances: dict[ObjectId, Advance] = field(default_factory=dict)
    # Jobs whose stored schedule cannot be evaluated, with the reason: parked.
    unusable: list[tuple[JobView, str]] = field(default_factory=list)


@dataclass
class Enqueued:
    """What one schedule pass queued: the fresh runs (to claim at once), and more due."""

    fresh: list[RunView] = field(default_factory=list)
    jobs: dict[ObjectId, JobView] = field(default_factory=dict)
    more: bool = False
    # The `nextRunAt` advances, written by `advance()` once the slots are recorded...
    advances: list[Advance] = field(default_factory=list)
    # ...but those of jobs whose fresh run this worker holds: they go with its start write.
    carried: dict[ObjectId, Advance] = field(default_factory=dict)
    # Some slots were queued by another worker first: the queue holds runs to claim.
    others_queued: bool = False
    # The earliest `notBefore` of the jittered runs queued for later (None: none queued).
    later: datetime | None = None

    def uncarried(self, advanced: set[ObjectId]) -> list[Advance]:
        """The carried advances no start write took along (`advanced`): to write on their own."""
        return [advance for job_id, advance in self.carried.items() if job_id not in advanced]


class Scheduler:
    """Runs schedule passes against the store; the runner decides when."""

    def __init__(
        self,
        store: WorkerStore,
        settings: Settings,
        stop: asyncio.Event,
        clock: Callable[[], datetime] = utc_now,
        metrics: WorkerMetrics = NULL_METRICS,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self.stop = stop
        self.clock = clock
        self.threshold = timedelta(seconds=settings.misfire_threshold_seconds)
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.second_reads = SecondReads()

    async def read_due(self, at: datetime) -> list[JobView]:
        """The next batch of jobs due by `at` (`at` may be a moment ahead): one read, and when
        it is full, a second one without the owners that crowd it (`fairness.heavy_owners`),
        so that one owner's herd cannot keep the others' due jobs out of the batch."""
        limit = self.settings.claim_batch_size
        jobs = await self.store.due_jobs(at, limit)
        heavy = heavy_owners(jobs, job_owner, limit, self.settings.max_running_per_owner)
        if not self.second_reads.wanted(heavy):
            return jobs
        others = await self.store.due_jobs(at, limit, exclude_owners=heavy)
        self.second_reads.found(len(others))
        return merge_unique(jobs, others, key=lambda job: job.id)

    def plan(self, jobs: list[JobView], now: datetime, capacity: int = 0) -> Plan:
        """The records and advances for these jobs at `now` (no I/O; `now` may be a slot the
        runner is about to wait for). The first `capacity` runs are queued already acquired by
        this worker (the runner claims them at once); the rest wait in the queue for any worker.
        """
        plan = Plan(jobs=jobs, now=now)
        lease = (self.store.worker_id, now + self.lease)
        memo: dict[tuple[ScheduleKey, datetime], DueSlots] = {}
        held_count = 0
        for job in jobs:
            if max_runs_reached(job):  # a stale advance revived it: nothing more to run
                plan.advances[job.id] = Advance(job.id, job.version, None, complete=True)
                continue
            key = (schedule_key(job), job.next_run_at or now)
            try:
                slots = memo.get(key) or due_slots(
                    job_schedule(job),
                    job.next_run_at or now,
                    now,
                    self.settings.max_missed_records,
                )
                memo[key] = slots
            except ValueError as error:  # ScheduleError, or a schedule that never fires again
                plan.unusable.append((job, getattr(error, "message", str(error))))
                continue
            # No slot left and none queued now: the last one is decided, the job is completed.
            complete = slots.next_run_at is None and slots.latest is None
            plan.advances[job.id] = Advance(job.id, job.version, slots.next_run_at, complete)
            if slots.latest is None:
                continue
            # A jittered slot starts later than its slot, and its start deadline moves with it.
            begins = jittered_start(job.id, slots.latest, job.options.jitter_seconds)
            deadline = start_deadline(job, slots.latest, self.threshold) + (begins - slots.latest)
            # Only runs due at the slot are queued held: a jittered one waits in the queue for
            # its own `notBefore`, for any worker (holding it would hold a handler idle).
            held = lease if held_count < capacity and begins <= now else None
            held_count += held is not None
            plan.queued.append((len(plan.documents), job))
            plan.documents.append(
                scheduled_run(
                    job,
                    slots.latest,
                    now=now,
                    start_deadline=deadline,
                    lease=held,
                    not_before=begins,
                )
            )
            plan.documents.extend(_missed_records(job, slots, now))
        return plan

    async def enqueue(self, plan: Plan) -> Enqueued:
        """Record a plan: one `insert_many`; then write `Enqueued.advances` (`advance()`) and
        hand the fresh runs, with `Enqueued.carried`, to the claim path.

        The advances are written after the records (a worker that dies in between leaves jobs
        that are simply due again, never a slot advanced past without its record). The advance
        of a job whose run this worker holds goes out with that run's start write (`carried`).
        """
        for job, message in plan.unusable:
            await self._park(job, message)
        documents = plan.documents
        duplicates = await persist(
            lambda: self.store.insert_runs(documents), what="queue slots", stop=self.stop
        )
        if duplicates:
            # A retried insert meets its own first attempt: those records are ours all the same.
            ours = await persist(
                lambda: self.store.present_runs([documents[i]["_id"] for i in duplicates]),
                what="queue slots",
                stop=self.stop,
            )
            duplicates = {i for i in duplicates if documents[i]["_id"] not in ours}
        self.metrics.records_inserted(documents, duplicates)  # the `missed` ones count
        queued = [parse_run(documents[i]) for i, _ in plan.queued if i not in duplicates]
        # Jittered runs not due yet stay in the queue: claimed there from their `notBefore`.
        fresh: list[RunView] = []
        later: list[datetime] = []
        for run in queued:
            if run.not_before is not None and run.not_before > plan.now:
                later.append(run.not_before)
            else:
                fresh.append(run)
        advances = dict(plan.advances)
        # An advance that ends the schedule (`nextRunAt` null) is a `$set`: never carried.
        carried = {
            run.job_id: advances.pop(run.job_id)
            for run in fresh
            if run.status is RunStatus.RUNNING
            and run.job_id in advances
            and advances[run.job_id].next_run_at is not None
        }
        return Enqueued(
            fresh=fresh,
            jobs={job.id: job for _, job in plan.queued},
            more=plan.more,
            advances=list(advances.values()),
            carried=carried,
            others_queued=len(queued) < len(plan.queued),
            later=min(later, default=None),
        )

    async def enqueue_due(self, capacity: int = 0) -> Enqueued:
        """Read the due jobs now, plan and record them (`read_due`, `plan`, `enqueue`)."""
        jobs = await self.read_due(self.clock())
        plan = self.plan(jobs, self.clock(), capacity)
        plan.more = len(jobs) >= self.settings.claim_batch_size
        return await self.enqueue(plan)

    async def advance(self, advances: Sequence[Advance]) -> None:
        """Move jobs past their recorded slots (one `bulk_write`, `$max`)."""
        if advances:
            await persist(
                lambda: self.store.advance_jobs(advances), what="advance jobs", stop=self.stop
            )

    async def _park(self, job: JobView, message: str) -> None:
        """Stop planning a job whose stored schedule cannot be evaluated (until a client edit)."""
        log.error("job.invalid_schedule", job_id=str(job.id), error=message)
        await persist(
            lambda: self.store.park_job(job.id, job.version, f"invalid schedule: {message}"),
            what="park job",
            stop=self.stop,
        )


def _missed_records(job: JobView, slots: DueSlots, now: datetime) -> list[Document]:
    """The earlier due slots of a job, recorded `missed` (beyond the limit: one summary)."""
    records = [
        slot_record(job, slot, RunStatus.MISSED, RunReason.SUPERSEDED, now=now)
        for slot in slots.missed
    ]
    if slots.summary_from is not None:
        records.append(
            slot_record(
                job,
                slots.summary_from,
                RunStatus.MISSED,
                RunReason.SUMMARISED,
                now=now,
                missed_count=slots.summary_count,
            )
        )
    if records:
        log.info(
            "run.missed",
            job_id=str(job.id),
            owner_id=job.owner_id,
            slots=len(slots.missed) + slots.summary_count,
            reason=RunReason.SUPERSEDED.value,
        )
    return records


# --- pure slot arithmetic ------------------------------------------------------------------


def schedule_for(
    cron: str | None,
    timezone: str,
    every: str | None = None,
    anchor_at: datetime | None = None,
) -> SlotSchedule:
    """The parsed schedule of a cron or interval without bounds (cached)."""
    return bounded_schedule((cron, timezone, every, anchor_at, None, None, None))


# What identifies a job's schedule: (cron, timezone, every, anchorAt, runAt, startAt, endAt).
ScheduleKey = BoundedKey
schedule_key = bounded_key


def job_schedule(job: JobView) -> SlotSchedule:
    """The schedule of a job as read: its cron, or its interval on its anchor."""
    return bounded_schedule(schedule_key(job))


@lru_cache(maxsize=65_536)
def _next_after(key: ScheduleKey, instant: datetime) -> datetime | None:
    """The first fire time after `instant`, None if none is left (cached: a herd asks the
    same question many times)."""
    return next_or_none(bounded_schedule(key), instant)


def start_deadline(job: JobView, slot: datetime, threshold: timedelta) -> datetime:
    """The latest instant the run of `slot` may start (checked when it is claimed).

    A slot is on time if it starts within its *start tolerance*: a tenth of the job's interval
    at that slot, at least 1 s, at most CRON_MISFIRE_THRESHOLD_SECONDS. Later, it is a misfire:
    `skip` never runs it; `runOnce` still runs it within `misfireGraceSeconds`. The interval is
    the schedule's without its bounds (the last slot before `endAt` keeps its tolerance); a
    one-off has none, its tolerance is the threshold.
    """
    unbounded = (*schedule_key(job)[:5], None, None)
    following = _next_after(unbounded, slot)
    tolerance = threshold
    if following is not None:
        tolerance = min(threshold, max(_SECOND, (following - slot) * ON_TIME_SHARE))
    if job.options.misfire_policy is MisfirePolicy.SKIP:
        return slot + tolerance
    return slot + max(tolerance, timedelta(seconds=job.options.misfire_grace_seconds))


def is_slot_of(job: JobView, slot: datetime) -> bool:
    """Whether `slot` is a fire time of the job's current schedule (False if unusable)."""
    try:
        return _next_after(schedule_key(job), slot - _SECOND) == slot
    except ValueError:
        return False


def next_slot(job: JobView, slot: datetime) -> datetime | None:
    """The job's first slot after `slot`, None past its last (its schedule is usable)."""
    return _next_after(schedule_key(job), slot)


@dataclass(frozen=True)
class DueSlots:
    """Slot arithmetic of one schedule from one `nextRunAt` at one instant."""

    # The latest slot in [nextRunAt, now], the only one that may run; None if none is due.
    latest: datetime | None
    # Earlier due slots, oldest first, each recorded `missed` on its own.
    missed: tuple[datetime, ...]
    # Due slots beyond `missed`, summarised in one record: its first slot and how many.
    summary_from: datetime | None
    summary_count: int
    # The first slot after now: the job's new `nextRunAt`; None when the schedule is over.
    next_run_at: datetime | None


def due_slots(
    schedule: SlotSchedule, next_run_at: datetime, now: datetime, max_records: int
) -> DueSlots:
    """Which slots from `next_run_at` up to `now` are due, and where the schedule goes next."""
    following = next_or_none(schedule, now)
    latest = _latest_slot(schedule, next_run_at, now)
    if latest is None:
        return DueSlots(None, (), None, 0, following)
    earlier = schedule.slots_between(next_run_at, latest - _SECOND, max_records + 1)
    if len(earlier) <= max_records:
        return DueSlots(latest, tuple(earlier), None, 0, following)
    summary_from = earlier[max_records]
    rest = schedule.slots_between(summary_from, latest - _SECOND, MISSED_COUNT_CAP)
    return DueSlots(latest, tuple(earlier[:max_records]), summary_from, len(rest), following)


def _latest_slot(schedule: SlotSchedule, start: datetime, now: datetime) -> datetime | None:
    """The latest slot in [start, now]: look back over doubling windows, never walk the gap."""
    window = _SECOND
    while True:
        low = max(start, now - window)
        slots = schedule.slots_between(low, now, _SEARCH_STEP)
        if slots:
            latest = slots[-1]
            while len(slots) == _SEARCH_STEP:
                slots = schedule.slots_between(latest + _SECOND, now, _SEARCH_STEP)
                latest = slots[-1] if slots else latest
            return latest
        if low <= start:
            return None
        window *= 2
