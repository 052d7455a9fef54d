"""The one start path: every run (scheduled slot, run-now, retry) starts through `Claimer.claim`.

A pass acquires pending runs (the run's lease is set here), reads their jobs as they are now,
judges each run in one place (`judge`), and starts the runnable ones with one conditional
update per job (`WorkerStore.start_runs`): that write is the only gate of overlap `skip`, for
every trigger, on any number of workers. Runs that do not start are released: recorded
`skipped`/`missed` with their reason, or queued again. A pass costs a bounded number of
commands, whatever the number of runs in it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Final

import structlog
from bson import ObjectId

from shared.model import MisfirePolicy, RunStatus, RunTrigger, moves_job_bookkeeping
from shared.runs import RunReason, utc_now
from shared.settings import Settings
from worker.backoff import persist
from worker.completion import ends_schedule, is_completed, is_scheduled
from worker.fairness import (
    OWNER_CAP_WAIT_SECONDS,
    OwnerGate,
    SecondReads,
    heavy_owners,
    interleave,
    merge_unique,
    run_owner,
)
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.scheduling import is_slot_of, next_slot
from worker.store import Advance, JobView, Release, RunView, Start, WorkerStore

# A pass with N free handlers reads up to N times this many due pending runs and picks N.
READ_SPREAD: Final = 2
# A retry meeting a run in progress (overlap `skip`) waits at least this long before its next try.
MIN_DEFER_SECONDS: Final = 1.0
# Triggers a paused job still runs (an explicit request for this one run).
RUN_WHEN_PAUSED: Final = frozenset({RunTrigger.MANUAL, RunTrigger.TEST})
# Triggers that wait for a run in progress (overlap `skip`) instead of being skipped: a retry,
# and a backfilled slot (a backfill queues many slots at once; skipping would lose all but one).
WAIT_FOR_OVERLAP: Final = frozenset({RunTrigger.RETRY, RunTrigger.BACKFILL})

log = structlog.get_logger("worker.claim")


@dataclass(frozen=True)
class Claimed:
    """A run this worker started (it holds the lease), with its job as it was started."""

    run: RunView
    job: JobView

    @property
    def run_id(self) -> ObjectId:
        """The run's `_id`."""
        return self.run.id

    @property
    def job_id(self) -> ObjectId:
        """The job's `_id`."""
        return self.job.id


@dataclass
class ClaimPass:
    """What one pass started, whether more is due at once, and how many runs others took."""

    claimed: list[Claimed] = field(default_factory=list)
    more: bool = False
    conflicts: int = 0
    # Jobs whose carried `nextRunAt` advance went out with their run's start write.
    advanced: set[ObjectId] = field(default_factory=set)
    # Runs over their owner's cap were queued again, due at this instant (None: none).
    deferred_until: datetime | None = None


class Verdict(Enum):
    """What happens to an acquired run."""

    START = "start"
    SKIP = "skip"
    MISS = "miss"
    DEFER = "defer"


@dataclass(frozen=True)
class Judgement:
    """A verdict and, unless the run starts, its reason."""

    verdict: Verdict
    reason: RunReason | None = None


def judge(run: RunView, job: JobView | None, now: datetime, *, busy: bool) -> Judgement:
    """The one decision about starting `run`, on its job as read (`busy`: a run is active).

    Deleted job: skipped. Paused: skipped (a run-now or test of a paused job still runs).
    Completed: a scheduled slot or its retry is skipped (a run-now still runs). A queued
    slot the schedule no longer has: skipped ("rescheduled"); one the schedule stage has
    queued a later slot after: missed ("a later slot was already due"). Past its start deadline:
    missed (backfilled slots have none). Overlap `skip` with a run in progress: a retry or a
    backfilled slot waits, anything else is skipped.
    """
    if job is None:
        return Judgement(Verdict.SKIP, RunReason.JOB_DELETED)
    if run.trigger not in RUN_WHEN_PAUSED and not job.enabled:
        return Judgement(Verdict.SKIP, RunReason.PAUSED)
    if is_completed(job) and is_scheduled(run):
        return Judgement(Verdict.SKIP, RunReason.COMPLETED)
    if run.trigger is RunTrigger.SCHEDULE:
        if not is_slot_of(job, run.scheduled_for):
            return Judgement(Verdict.SKIP, RunReason.RESCHEDULED)
        following = next_slot(job, run.scheduled_for)
        if job.next_run_at is not None and following is not None and following < job.next_run_at:
            # The schedule stage has queued a later slot since: only the latest one runs (when
            # claims fall behind, each job keeps one runnable slot, never a catch-up storm).
            return Judgement(Verdict.MISS, RunReason.SUPERSEDED)
    if run.start_deadline is not None and now > run.start_deadline:
        skip = job.options.misfire_policy is MisfirePolicy.SKIP
        return Judgement(Verdict.MISS, RunReason.MISFIRE_SKIP if skip else RunReason.MISFIRE_GRACE)
    if busy and job.overlap_skip:
        if run.trigger in WAIT_FOR_OVERLAP:
            return Judgement(Verdict.DEFER)
        return Judgement(Verdict.SKIP, RunReason.OVERLAP)
    return Judgement(Verdict.START)


def booked(run: RunView) -> bool:
    """Whether `run` enters its job's `activeRunIds` (the start write) and bookkeeping.

    A test run does not: it is judged on the job as read (deleted: skipped; overlap `skip`
    with a run in progress: skipped) and starts without a job write, so it never holds up,
    skips or counts against a scheduled slot, and its end leaves the job alone.
    """
    return moves_job_bookkeeping(run.trigger)


class Claimer:
    """Runs claim passes against the store; the runner decides when."""

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
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.monotonic = time.monotonic
        self.gate = OwnerGate(store.owners, settings.max_running_per_owner)
        self.second_reads = SecondReads()
        self._deferred_until: datetime | None = None

    async def claim(
        self,
        capacity: int,
        fresh: Sequence[RunView] = (),
        known: dict[ObjectId, JobView] | None = None,
        carried: Mapping[ObjectId, Advance] | None = None,
    ) -> ClaimPass:
        """Start up to `capacity` due pending runs: `fresh` ones first (just queued by this
        worker, their jobs `known` from that read), else those the queue holds. The `carried`
        advances of the fresh runs' jobs go out with their start writes (`ClaimPass.advanced`
        says which did)."""
        began = self.monotonic()
        wanted, more = await self._candidates(capacity, fresh)
        if not wanted:
            return ClaimPass(more=more)
        # Runs the schedule stage queued already acquired by this worker need no acquisition.
        held = [run for run in wanted if self._holds(run)]
        asked = [run for run in wanted if not self._holds(run)]

        async def acquire() -> list[RunView]:
            if not asked:
                return []
            now = self.clock()  # the start time is the time of the write that succeeds
            return await self.store.acquire_runs(asked, now, now + self.lease)

        async def read_jobs() -> dict[ObjectId, JobView]:
            missing = {run.job_id for run in wanted} - (known or {}).keys()
            if not missing:
                return {}
            return await self.store.jobs_by_id(missing)

        # The jobs are read alongside the acquisition (one round trip for both): deciding on
        # a read made a moment before the acquire is safe, because the start write below is
        # conditioned on the version read.
        acquired, jobs = await asyncio.gather(
            persist(acquire, what="acquire runs", stop=self.stop),
            persist(read_jobs, what="read jobs", stop=self.stop),
        )
        runs = held + acquired
        conflicts = len(wanted) - len(runs)  # acquired by another worker first
        self.metrics.claim_conflict(conflicts)
        if not runs:
            return ClaimPass(more=more, conflicts=conflicts)
        self._deferred_until = None
        claimed, advanced = await self._start(runs, {**(known or {}), **jobs}, carried or {})
        claimed = await self._still_ours(claimed, began)
        return ClaimPass(
            claimed=claimed,
            more=more,
            conflicts=conflicts,
            advanced=advanced,
            deferred_until=self._deferred_until,
        )

    def _holds(self, run: RunView) -> bool:
        return run.status is RunStatus.RUNNING and run.worker_id == self.store.worker_id

    async def _candidates(
        self, capacity: int, fresh: Sequence[RunView]
    ) -> tuple[list[RunView], bool]:
        """Fresh runs first; the queue is read only when there are none: one query, and a
        second one without the owners that filled a full first read (`heavy_owners`)."""
        if fresh:
            return list(fresh[:capacity]), len(fresh) > capacity
        now = self.clock()
        limit = min(self.settings.claim_batch_size, capacity * READ_SPREAD)
        due = await self.store.due_pending(now, limit)
        heavy = heavy_owners(due, run_owner, limit, self.settings.max_running_per_owner)
        if self.second_reads.wanted(heavy):
            others = await self.store.due_pending(now, limit, exclude_owners=heavy)
            self.second_reads.found(len(others))
            due = merge_unique(due, others, key=lambda run: run.id)
        more = len(due) >= limit or len(due) > capacity
        # Several workers read the same queue: a random order keeps most of them apart, and
        # owners take turns (round-robin) so that no owner's runs fill the pass.
        random.shuffle(due)
        return interleave(due, run_owner)[:capacity], more

    async def _start(
        self,
        runs: list[RunView],
        jobs: dict[ObjectId, JobView],
        carried: Mapping[ObjectId, Advance],
    ) -> tuple[list[Claimed], set[ObjectId]]:
        """Judge each run, start the runnable ones, release the rest (bounded commands)."""
        now = self.clock()
        starts: list[Start] = []
        releases: list[Release] = []
        unbooked: list[Claimed] = []
        for run in runs:
            job = jobs.get(run.job_id)
            judgement = judge(run, job, now, busy=bool(job and job.active_run_ids))
            if judgement.verdict is Verdict.START and job is not None and not booked(run):
                unbooked.append(Claimed(run, job))  # a test run: no start write on its job
            elif judgement.verdict is Verdict.START and job is not None:
                advance = carried.get(job.id) if run.trigger is RunTrigger.SCHEDULE else None
                carry = advance.next_run_at if advance and advance.version == job.version else None
                starts.append(Start(run.id, job, carry, scheduled=is_scheduled(run)))
            else:
                releases.append(self._release(run, job, judgement, now))
        if self.gate.enabled:
            starts = await self._admit(starts, releases, now)
        matched = await persist(
            lambda: self.store.start_runs(starts), what="start runs", stop=self.stop
        )
        started = starts
        if matched < len(starts):
            started, lost = await self._settle_lost_starts(starts, {run.id: run for run in runs})
            releases.extend(lost)
            # Their owner slots go back before they do (a run in the queue never holds one).
            unstarted = [release.run_id for release in lost]
            await persist(
                lambda: self.gate.release(unstarted), what="release owner slots", stop=self.stop
            )
        await persist(
            lambda: self.store.release_runs(releases, now), what="release runs", stop=self.stop
        )
        await self._complete_ended(releases, {run.id: run for run in runs}, jobs)
        for release in releases:
            if release.status is not RunStatus.PENDING:
                self.metrics.slot_recorded(release.status.value, release.error)
        by_id = {run.id: run for run in runs}
        advanced = {start.job.id for start in started if start.advance_to is not None}
        claimed = [Claimed(by_id[start.run_id], start.job) for start in started]
        return [*claimed, *unbooked], advanced

    async def _complete_ended(
        self,
        releases: Sequence[Release],
        runs: Mapping[ObjectId, RunView],
        jobs: Mapping[ObjectId, JobView],
    ) -> None:
        """Jobs whose last slot was just released unrun (missed, skipped) are `completed`."""
        ended = {}
        for release in releases:
            run = runs[release.run_id]
            job = jobs.get(run.job_id)
            if job is not None and ends_schedule(run, job, release.status):
                ended[job.id] = job.version
        if ended:
            await persist(
                lambda: self.store.complete_jobs(list(ended.items())),
                what="complete jobs",
                stop=self.stop,
            )

    async def _admit(
        self, starts: list[Start], releases: list[Release], now: datetime
    ) -> list[Start]:
        """The starts that got a slot of their owner; the others are queued again (appended
        to `releases`) a moment later, their start deadline lifted: they were on time and wait
        only for their owner's other runs, so they are deferred, never dropped."""
        admitted, over = await persist(
            lambda: self.gate.admit(starts), what="take owner slots", stop=self.stop
        )
        if over:
            later = now + timedelta(seconds=OWNER_CAP_WAIT_SECONDS)
            self._deferred_until = later
            releases.extend(
                Release(start.run_id, RunStatus.PENDING, not_before=later, lift_deadline=True)
                for start in over
            )
        return admitted

    async def _settle_lost_starts(
        self, starts: list[Start], runs: dict[ObjectId, RunView]
    ) -> tuple[list[Start], list[Release]]:
        """Some start writes did not match: read the jobs and judge those runs again."""
        ids = {start.job.id for start in starts}
        current = await persist(
            lambda: self.store.jobs_by_id(ids), what="read jobs", stop=self.stop
        )
        now = self.clock()
        started: list[Start] = []
        releases: list[Release] = []
        for start in starts:
            job = current.get(start.job.id)
            if job is not None and start.run_id in job.active_run_ids:
                # It did apply (a retried write), its carried advance with it.
                started.append(Start(start.run_id, job, start.advance_to, start.scheduled))
                continue
            run = runs[start.run_id]
            busy = bool(job and set(job.active_run_ids) - {start.run_id})
            judgement = judge(run, job, now, busy=busy)
            releases.append(self._release(run, job, judgement, now))
        return started, releases

    @staticmethod
    def _release(run: RunView, job: JobView | None, judgement: Judgement, now: datetime) -> Release:
        bound = log.bind(run_id=str(run.id), job_id=str(run.job_id), owner_id=run.owner_id)
        if judgement.verdict is Verdict.START:
            # The job changed between its read and the start write: queued again as it was.
            bound.info("run.requeued", reason="job changed before start")
            return Release(run.id, RunStatus.PENDING)
        if judgement.verdict is Verdict.DEFER:
            wait = MIN_DEFER_SECONDS
            if job is not None:
                wait = max(wait, job.options.retry.backoff_seconds)
            bound.info("run.deferred", reason=RunReason.OVERLAP.value, wait_seconds=wait)
            return Release(run.id, RunStatus.PENDING, not_before=now + timedelta(seconds=wait))
        status = RunStatus.MISSED if judgement.verdict is Verdict.MISS else RunStatus.SKIPPED
        reason = judgement.reason.value if judgement.reason else None
        bound.info(f"run.{status.value}", reason=reason, slot=run.slot)
        return Release(run.id, status, error=reason)

    async def _still_ours(self, claimed: list[Claimed], began: float) -> list[Claimed]:
        """After a slow pass (a database outage), start only the runs still under our lease.

        A pass held up for longer than the lease may find its runs reaped by another worker
        (recorded `abandoned`, a retry queued): starting them would run the attempt twice.
        Passes faster than a heartbeat cannot have lost a lease and skip the check.
        """
        if not claimed or self.monotonic() - began <= self.settings.heartbeat_seconds:
            return claimed
        ids = [item.run_id for item in claimed]
        until = self.clock() + self.lease
        await persist(
            lambda: self.store.extend_run_leases(ids, until), what="check leases", stop=self.stop
        )
        ours = await persist(
            lambda: self.store.runs_still_ours(ids), what="check leases", stop=self.stop
        )
        for item in claimed:
            if item.run_id not in ours:
                log.warning("run.not_started", run_id=str(item.run_id), reason="lease lost")
        return [item for item in claimed if item.run_id in ours]
