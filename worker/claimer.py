"""Scheduled claim passes: turn due jobs into leased runs, exactly once per slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Final

import structlog
from bson import ObjectId

from shared.db import Document
from shared.model import OverlapPolicy, RunStatus, RunTrigger, slot_key
from shared.settings import Settings
from worker.backoff import persist
from worker.due_queue import DueQueue
from worker.lease_check import keep_if_slow
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.planner import (
    OVERLAP,
    SUPERSEDED,
    Action,
    DueSlots,
    MissVerdict,
    PlannerLimits,
    decide,
    due_slots,
    miss_verdict,
    schedule_for,
)
from worker.records import Advance, Claimed, ClaimPass, options_of, run_document, utc_now
from worker.store import WorkerStore

JOB_CHANGED = "job changed before start"
# Advances that keep missing because a job is edited again and again: give up after this many.
RECLAIM_ROUNDS: Final = 3
log = structlog.get_logger("worker.claim")


@dataclass
class _Plan:
    job: Document
    slots: DueSlots
    action: Action
    decisive: Document

    @property
    def runs(self) -> bool:
        return self.action is Action.RUN


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
        self.settings = settings
        self.stop = stop
        self.clock = clock
        self.metrics = metrics
        self.limits = PlannerLimits.from_settings(settings)
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.due = DueQueue(store, settings.claim_batch_size)

    async def claim_scheduled(self, capacity: int) -> ClaimPass:
        """One batch of due jobs: record their due slots, start the runnable ones.

        Steps (docs/design.md, "Scheduled slots"): take due jobs (one range query per batch);
        plan; insert the deciding record of each job (one insert_many; a duplicate means another
        worker has that slot); advance every job (one bulk write); resolve the rare advances
        that missed.
        """
        began = time.monotonic()
        now = self.clock()
        jobs, more = await self.due.take(now, capacity)
        invalid: list[tuple[Document, str]] = []
        plans, idle_advances = self._plan(jobs, now, invalid)
        await self._park(invalid)
        if not plans and not idle_advances:
            return ClaimPass(more=more)
        duplicates = await self._insert_deciding([plan.decisive for plan in plans])
        self.metrics.claim_conflict(len(duplicates))
        self.metrics.records_inserted([plan.decisive for plan in plans], duplicates)
        advances = idle_advances + [
            self._advance(plan, won=index not in duplicates) for index, plan in enumerate(plans)
        ]
        matched = await persist(
            lambda: self.store.advance_jobs(advances), what="advance jobs", stop=self.stop
        )
        won = [plan for index, plan in enumerate(plans) if index not in duplicates]
        retracted: set[ObjectId] = set()
        if matched < len(advances):
            retracted = await self._resolve(won, now)
        plans = [plan for plan in plans if plan.decisive["_id"] not in retracted]
        await self._record_missed(plans, now)
        claimed = [
            Claimed(plan.decisive, plan.job)
            for plan in won
            if plan.runs and plan.decisive["_id"] not in retracted
        ]
        claimed = await keep_if_slow(self.store, claimed, began, self.settings, self.stop)
        return ClaimPass(claimed=claimed, more=more)

    def _plan(
        self, jobs: Sequence[Document], now: datetime, invalid: list[tuple[Document, str]]
    ) -> tuple[list[_Plan], list[Advance]]:
        plans: list[_Plan] = []
        advances: list[Advance] = []
        memo: dict[tuple[str, str, datetime], DueSlots] = {}
        for job in jobs:
            cron, zone = str(job.get("cron")), str(job.get("timezone") or "UTC")
            key = (cron, zone, job["nextRunAt"])
            try:
                slots = memo.get(key) or due_slots(
                    schedule_for(cron, zone), job["nextRunAt"], now, self.limits.max_missed_records
                )
            except ValueError as error:  # ScheduleError, or a schedule that never fires again
                invalid.append((job, getattr(error, "message", str(error))))
                continue
            memo[key] = slots
            if slots.latest is None:
                advances.append(Advance(job["_id"], job.get("version"), slots.next_run_at))
                continue
            plans.append(self._decide(job, slots, now))
        return plans, advances

    def _decide(self, job: Document, slots: DueSlots, now: datetime) -> _Plan:
        assert slots.latest is not None
        decision = decide(
            slots.latest,
            now,
            options_of(job),
            has_active_run=bool(job.get("activeRunIds")),
            misfire_threshold=self.limits.misfire_threshold,
        )
        status = {
            Action.RUN: RunStatus.RUNNING,
            Action.SKIP: RunStatus.SKIPPED,
            Action.MISS: RunStatus.MISSED,
        }[decision.action]
        runs = decision.action is Action.RUN
        decisive = run_document(
            job,
            slot=slot_key(slots.latest),
            scheduled_for=slots.latest,
            trigger=RunTrigger.SCHEDULE,
            status=status,
            now=now,
            error=decision.reason,
            worker_id=self.store.worker_id if runs else None,
            lease_until=now + self.lease if runs else None,
        )
        if not runs:
            log.info(
                f"run.{status.value}",
                job_id=str(job["_id"]),
                owner_id=job.get("ownerId"),
                slot=decisive["slot"],
                reason=decision.reason,
            )
        return _Plan(job, slots, decision.action, decisive)

    def _advance(self, plan: _Plan, *, won: bool) -> Advance:
        """The winner starts its run; a loser still moves `nextRunAt` past the taken slot.

        Both use `$max`, so their order does not matter, and a worker that died between its
        insert and its advance cannot leave the job stuck on a slot that is already recorded.
        """
        job = plan.job
        runs = won and plan.runs
        return Advance(
            job_id=job["_id"],
            version=job.get("version"),
            next_run_at=plan.slots.next_run_at,
            run_id=plan.decisive["_id"] if runs else None,
            require_idle=runs and options_of(job).overlap_policy is OverlapPolicy.SKIP,
        )

    async def _insert_deciding(self, documents: list[Document]) -> set[int]:
        """Insert the deciding records; the indexes another worker had already recorded."""
        attempts = 0

        async def insert() -> set[int]:
            nonlocal attempts
            attempts += 1
            return await self.store.insert_runs(documents)

        duplicates = await persist(insert, what="claim slots", stop=self.stop)
        if attempts > 1 and duplicates:
            # An earlier attempt may have inserted some before failing: those are ours.
            ids = [documents[index]["_id"] for index in duplicates]
            ours = await persist(
                lambda: self.store.existing_run_ids(ids), what="claim slots", stop=self.stop
            )
            duplicates = {index for index in duplicates if documents[index]["_id"] not in ours}
        return duplicates

    async def _park(self, invalid: list[tuple[Document, str]]) -> None:
        """Stop planning jobs whose stored schedule cannot be evaluated (until a client edit)."""
        for job, message in invalid:
            log.error("job.invalid_schedule", job_id=str(job["_id"]), error=message)
            park = partial(
                self.store.park_job, job["_id"], job.get("version"), f"invalid schedule: {message}"
            )
            await persist(park, what="park job", stop=self.stop)

    async def _resolve(self, won: list[_Plan], now: datetime) -> set[ObjectId]:
        """Find out why some advances missed; advance again, skip or retract. Run ids retracted.

        The slot's record stands, and another worker may already have moved the job past the
        slot as a loser: so a run is withdrawn only if its job was deleted, paused or
        rescheduled meanwhile. After any other edit the job advances again on its new version
        and the run uses the edited job. A run that lost an overlap race becomes `skipped`.
        """
        unsettled = [plan for plan in won if plan.runs]
        retract: list[_Plan] = []
        overlapping: list[_Plan] = []
        for round_number in range(1, RECLAIM_ROUNDS + 1):
            if not unsettled:
                break
            ids = [plan.job["_id"] for plan in unsettled]
            states = await persist(
                partial(self.store.jobs_by_id, ids), what="resolve claims", stop=self.stop
            )
            edited: list[_Plan] = []
            for plan in unsettled:
                state = states.get(plan.job["_id"])
                skip = options_of(plan.job).overlap_policy is OverlapPolicy.SKIP
                verdict = miss_verdict(plan.job, state, plan.decisive["_id"], overlap_skip=skip)
                if verdict is MissVerdict.EDITED and state is not None:
                    plan.job = state
                    edited.append(plan)
                elif verdict is not MissVerdict.APPLIED:
                    (retract if verdict is MissVerdict.WITHDRAWN else overlapping).append(plan)
            if round_number == RECLAIM_ROUNDS:
                # Still being edited: withdraw, judged on this read (no advance left unchecked).
                retract.extend(edited)
                break
            again = [self._advance(plan, won=True) for plan in edited]
            await persist(
                partial(self.store.advance_jobs, again), what="advance jobs", stop=self.stop
            )
            unsettled = edited  # the next round's read tells which of them matched
        await self._settle_misses(retract, overlapping, now)
        return {plan.decisive["_id"] for plan in retract}

    async def _settle_misses(
        self, retract: list[_Plan], overlapping: list[_Plan], now: datetime
    ) -> None:
        """Delete the withdrawn runs; record the overlapping ones `skipped` and move their jobs."""
        run_ids = [plan.decisive["_id"] for plan in retract]
        await persist(lambda: self.store.retract_runs(run_ids), what="retract runs", stop=self.stop)
        skipped = [plan.decisive["_id"] for plan in overlapping]
        await persist(
            lambda: self.store.skip_runs(skipped, now, OVERLAP), what="skip runs", stop=self.stop
        )
        moves = [self._advance(plan, won=False) for plan in overlapping]
        await persist(lambda: self.store.advance_jobs(moves), what="advance jobs", stop=self.stop)
        for plan in retract:
            log.info("run.retracted", job_id=str(plan.job["_id"]), reason=JOB_CHANGED)
        for plan in overlapping:
            plan.action = Action.SKIP
            self.metrics.slot_recorded(RunStatus.SKIPPED.value, OVERLAP)

    async def _record_missed(self, plans: list[_Plan], now: datetime) -> None:
        """Record the earlier due slots of each job as `missed` (duplicates: already recorded)."""
        documents: list[Document] = []
        for plan in plans:
            job, slots = plan.job, plan.slots
            for slot in slots.missed:
                documents.append(self._missed(job, slot, now, SUPERSEDED))
            if slots.summary_from is not None:
                reason = f"missed: {slots.summary_count} more due slots (summarised)"
                documents.append(
                    self._missed(job, slots.summary_from, now, reason, slots.summary_count)
                )
            if slots.missed:
                log.info(
                    "run.missed",
                    job_id=str(job["_id"]),
                    owner_id=job.get("ownerId"),
                    slots=len(slots.missed) + slots.summary_count,
                    reason=SUPERSEDED,
                )
        if documents:
            duplicates = await persist(
                lambda: self.store.insert_runs(documents),
                what="record missed slots",
                stop=self.stop,
            )
            self.metrics.records_inserted(documents, duplicates)

    @staticmethod
    def _missed(
        job: Document, slot: datetime, now: datetime, reason: str, count: int | None = None
    ) -> Document:
        return run_document(
            job,
            slot=slot_key(slot),
            scheduled_for=slot,
            trigger=RunTrigger.SCHEDULE,
            status=RunStatus.MISSED,
            now=now,
            error=reason,
            missed_count=count,
        )
