"""Every heartbeat: renew our leases, upsert our worker document, reap expired leases of others."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

import structlog
from bson import ObjectId
from pymongo.errors import PyMongoError

from shared import __version__
from shared.model import FINAL_RUN_STATUSES, RunStatus
from shared.settings import Settings
from worker.backoff import brief
from worker.finisher import Finisher
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.records import Claimed, conclude, utc_now
from worker.store import WorkerStore

REAP_BATCH: Final = 100

log = structlog.get_logger("worker.heartbeat")


@dataclasses.dataclass
class WorkerState:
    """What the heartbeat reports about this process."""

    worker_id: str
    name: str
    started_at: datetime
    mode: str = "streams"
    runs_in_flight: int = 0


class Heartbeat:
    """One beat = one lease renewal (`update_many`), one worker upsert, one reaper query."""

    def __init__(
        self,
        store: WorkerStore,
        settings: Settings,
        state: WorkerState,
        finisher: Finisher,
        *,
        held_runs: Callable[[], list[ObjectId]],
        executing_runs: Callable[[], set[ObjectId]],
        metrics: WorkerMetrics = NULL_METRICS,
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.settings = settings
        self.state = state
        self.finisher = finisher
        self.held_runs = held_runs
        self.executing_runs = executing_runs
        self.lease = timedelta(seconds=settings.lease_seconds)

    async def beat(self) -> None:
        """Renew, report, reap, sweep; each step on its own, so an outage only delays them."""
        now = utc_now()
        for step in (self.renew, self.report, self.reap, self.sweep):
            try:
                await step(now)
            except PyMongoError as error:
                self.metrics.db_error("heartbeat")
                log.warning("db.unavailable", operation=step.__name__, error=brief(error))

    async def renew(self, now: datetime) -> None:
        """Extend the lease of every run this worker holds."""
        held = self.held_runs()
        if not held:
            return
        executing = self.executing_runs()
        kept = await self.store.renew_leases(held, now + self.lease)
        # Finished runs may be written meanwhile and new ones start, so only a shortfall below
        # the handlers executing before and after the renewal proves a loss: expired during an
        # outage and reaped by another worker.
        still_executing = executing & self.executing_runs()
        if kept < len(still_executing):
            log.warning("lease.lost", held=len(held), renewed=kept)

    async def report(self, now: datetime, **extra: object) -> None:
        """Upsert this worker's document in `cron_workers`."""
        await self.store.beat(
            {
                "name": self.state.name,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "version": __version__,
                "startedAt": self.state.started_at,
                "lastSeenAt": now,
                "runsInFlight": self.state.runs_in_flight,
                "mode": self.state.mode,
                **extra,
            }
        )
        self.metrics.heartbeat()

    async def reap(self, now: datetime) -> None:
        """Record runs whose lease expired as `abandoned`, and queue their retries."""
        expired = await self.store.expired_runs(now, REAP_BATCH)
        if not expired:
            return
        jobs = await self.store.jobs_by_id({run["jobId"] for run in expired})
        for run in expired:
            started_at = run.get("startedAt") or now
            duration_ms = int((now - started_at).total_seconds() * 1000)
            error = f"lease expired: worker {run.get('workerId')} stopped renewing it"
            job = jobs.get(run["jobId"])
            outcome = conclude(
                Claimed(run, job or {}),
                RunStatus.ABANDONED,
                started_at=started_at,
                ended_at=now,
                error=error,
                retryable=job is not None,
            )
            # The retry goes in before the run is final: a worker killed in between leaves a run
            # that is reaped again (the retry insert is idempotent), never one without its retry.
            queued = outcome.retry is not None and not await self.store.insert_runs([outcome.retry])
            if not await self.store.abandon_expired(run, now, error, duration_ms):
                # Another worker reaped it, or its owner finished (or renewed) just in time.
                if queued and outcome.retry is not None:
                    await self.store.withdraw_retry(run["_id"], outcome.retry["_id"])
                continue
            self.metrics.run_reaped(run.get("type"), run.get("trigger"), retried=queued)
            # The run is final; the finisher writes the job side, retrying through outages.
            self.finisher.add(dataclasses.replace(outcome, update_run=False, retry=None))
            log.warning(
                "run.abandoned",
                run_id=str(run["_id"]),
                job_id=str(run["jobId"]),
                owner_id=run.get("ownerId"),
                previous_worker=run.get("workerId"),
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
        jobs = await self.store.jobs_with_active_runs(REAP_BATCH)
        listed = {run_id for job in jobs for run_id in job.get("activeRunIds", [])}
        if not listed:
            return
        runs = await self.store.runs_by_id(listed)
        settled_before = now - timedelta(seconds=self.settings.heartbeat_seconds)
        for job in jobs:
            for run_id in job.get("activeRunIds", []):
                run = runs.get(run_id)
                if run is None or run.get("status") not in FINAL_RUN_STATUSES:
                    continue  # still running (or pending), or gone with the retention
                ended_at = run.get("endedAt") or now
                if ended_at > settled_before:
                    continue  # its own worker is most likely writing it right now
                outcome = conclude(
                    Claimed(run, job),
                    RunStatus(run["status"]),
                    started_at=run.get("startedAt") or ended_at,
                    ended_at=ended_at,
                    error=run.get("error"),
                )
                self.finisher.add(dataclasses.replace(outcome, update_run=False))
                log.warning("run.settled_late", run_id=str(run_id), job_id=str(job["_id"]))
