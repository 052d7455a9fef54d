"""Recovery: runs of workers that stopped (dead, or cut off past their lease), and job
bookkeeping left behind by a worker killed between a run's final write and its job's."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Final

import structlog

from shared.model import FINAL_RUN_STATUSES, RunStatus
from shared.runs import RunReason
from shared.settings import Settings
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.outcomes import Finisher, conclude
from worker.store import JobView, RunView, WorkerStore

REAP_BATCH: Final = 100
# A worker whose heartbeat is this many beats overdue (and at least half a lease) is dead: its
# runs are reaped at once, without waiting for their leases to expire.
DEAD_AFTER_BEATS: Final = 3

log = structlog.get_logger("worker.recovery")


class Recovery:
    """Every heartbeat: reap runs of dead workers and expired leases; sweep stale bookkeeping."""

    def __init__(
        self,
        store: WorkerStore,
        settings: Settings,
        finisher: Finisher,
        metrics: WorkerMetrics = NULL_METRICS,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self.finisher = finisher
        self.beat = timedelta(seconds=settings.heartbeat_seconds)
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.dead_after = max(self.beat * DEAD_AFTER_BEATS, self.lease / 2)

    async def reap(self, now: datetime) -> None:
        """Record runs of dead workers, or with an expired lease, `abandoned`; queue retries.

        Abandoned runs retry at once (their handler did not fail; their worker stopped).
        """
        silent_since = now - self.dead_after
        dead = await self.store.silent_workers(silent_since, now - 2 * self.lease - self.beat)
        runs = await self.store.reapable_runs(now, dead, REAP_BATCH)
        if not runs:
            return
        jobs = await self.store.jobs_by_id({run.job_id for run in runs})
        for run in runs:
            expired = run.worker_id not in dead
            reason = RunReason.LEASE_EXPIRED if expired else RunReason.WORKER_DEAD
            error = f"{reason.value} ({run.worker_id})"
            await self._reap_one(run, jobs.get(run.job_id), now, error)

    async def _reap_one(self, run: RunView, job: JobView | None, now: datetime, error: str) -> None:
        started_at = run.started_at or now
        duration_ms = int((now - started_at).total_seconds() * 1000)
        outcome = conclude(
            run,
            job,
            RunStatus.ABANDONED,
            started_at=started_at,
            ended_at=now,
            error=error,
            retry_at_once=True,
        )
        # The retry goes in before the run is final: a worker killed in between leaves a run
        # that is reaped again (the retry insert is idempotent), never one without its retry.
        queued = outcome.retry is not None and not await self.store.insert_runs([outcome.retry])
        if not await self.store.reap_run(run, now, error, duration_ms):
            # Another worker reaped it, or its owner finished (or renewed) just in time.
            if queued and outcome.retry is not None:
                await self.store.withdraw_retry(run.id, outcome.retry["_id"])
            return
        job_type = job.type if job is not None else None  # a deleted job's type: "other"
        self.metrics.run_reaped(job_type, run.trigger.value, retried=queued)
        # The run is final; the finisher writes the job side, retrying through outages.
        self.finisher.add(dataclasses.replace(outcome, update_run=False, retry=None))
        log.warning(
            "run.abandoned",
            run_id=str(run.id),
            job_id=str(run.job_id),
            owner_id=run.owner_id,
            previous_worker=run.worker_id,
            reason=error,
            retry_at=outcome.retry["notBefore"].isoformat() if outcome.retry else None,
        )

    async def sweep(self, now: datetime) -> None:
        """Finish the job side of runs that ended without it.

        A run's final record and its job's bookkeeping (`activeRunIds`, counters, status, the
        queued retry) are two writes; a worker killed between them, or before it flushed what
        its reaper found, leaves the job listing a run that is over, and an overlap `skip` job
        would then skip every slot. Runs that ended over a heartbeat ago are finished here
        from their records; the job update matches only while the run is still listed and the
        retry insert is idempotent, so racing the original worker's late write is harmless.
        """
        if self.store.owners.enabled:
            await self.sweep_owner_slots()
        jobs = await self.store.jobs_with_active_runs(REAP_BATCH)
        listed = {run_id for job in jobs for run_id in job.active_run_ids}
        if not listed:
            return
        runs = await self.store.runs_by_id(listed)
        settled_before = now - self.beat
        for job in jobs:
            for run_id in job.active_run_ids:
                run = runs.get(run_id)
                if run is None or run.status not in FINAL_RUN_STATUSES:
                    continue  # still running (or pending), or gone with the retention
                ended_at = run.ended_at or now
                if ended_at > settled_before:
                    continue  # its own worker is most likely writing it right now
                outcome = conclude(
                    run,
                    job,
                    run.status,
                    started_at=run.started_at or ended_at,
                    ended_at=ended_at,
                    error=run.error,
                    retry_at_once=run.status is RunStatus.ABANDONED,
                )
                self.finisher.add(dataclasses.replace(outcome, update_run=False))
                log.warning("run.settled_late", run_id=str(run_id), job_id=str(job.id))

    async def sweep_owner_slots(self) -> None:
        """Give back owner slots still held by runs that are over (`CRON_MAX_RUNNING_PER_OWNER`).

        A run's slot is given back with its outcome (the finisher, also for runs the reaper
        ends); a worker killed in between leaves the run listed. Only runs that are final (or
        gone) are released: a final run never runs again, whereas a run read `pending` may be
        re-acquired, and listed again, by another worker at this very moment.
        """
        listed = await self.store.owners.listed(REAP_BATCH)
        run_ids = {run_id for holders in listed.values() for run_id in holders}
        if not run_ids:
            return
        runs = await self.store.runs_by_id(run_ids)
        over = [
            run_id
            for run_id in run_ids
            if (run := runs.get(run_id)) is None or run.status in FINAL_RUN_STATUSES
        ]
        if over:
            log.info("owner_slots.released", runs=len(over))
            await self.store.owners.release(over)
