"""Failure notification and auto-pause: what happens after a slot's outcome is written.

The finisher hands each written batch over; the follow-up of each slot outcome runs here as a
task (bounded concurrency, one job at a time, a deadline per follow-up), never on the run loop
or the finisher's path. The state lives on the job (streak, failures not yet notified, the last
notice), moved by conditional writes in worker/store.py, so several workers decide alike and a
restart loses nothing but a notice in flight: failures not notified are counted into the next.
A notice that cannot be delivered is recorded on the job (`lastNotification`) and logged; it
never touches the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import structlog
from bson import ObjectId
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from shared.db import Document
from shared.model import JobDocument, NotifyPolicy
from shared.runs import error_summary, utc_now
from shared.settings import Settings
from worker.handlers import http_request
from worker.notify_delivery import DeliveryError, send_email, send_webhook
from worker.notify_policy import (
    NoticeKind,
    StreakEvent,
    auto_pause_reason,
    failure_notice_not_before,
    notify_policy,
    pause_threshold,
    should_pause,
    wants_failure_notice,
    wants_recovery_notice,
)
from worker.notify_templates import Notice

if TYPE_CHECKING:
    from worker.outcomes import Outcome
    from worker.store import WorkerStore

# Follow-ups (reads, writes and deliveries) in flight at once; beyond, they queue.
CONCURRENCY: Final = 8
# Queued follow-ups beyond this are dropped (logged): their failures stay counted on the job.
MAX_QUEUED: Final = 10_000
# One follow-up (its writes and every channel's delivery) ends within this.
FOLLOW_UP_SECONDS: Final = 60.0

log = structlog.get_logger("worker.notify")


class Notifier:
    """Runs the follow-ups of written slot outcomes: auto-pause, failure and recovery notices."""

    def __init__(
        self,
        store: WorkerStore,
        settings: Settings,
        *,
        concurrency: int = CONCURRENCY,
        resolver: http_request.Resolver = http_request.system_resolver,
    ) -> None:
        self.store = store
        self.settings = settings
        self.resolver = resolver
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[ObjectId, tuple[asyncio.Lock, int]] = {}

    def outcomes_written(self, outcomes: Sequence[Outcome]) -> None:
        """Start the follow-up of each written outcome that ends a slot (the finisher's hook)."""
        for outcome in outcomes:
            step = outcome.streak
            if step is None:
                continue
            if step.event is StreakEvent.SUCCEEDED and not step.streak_notified:
                continue  # the common case: nothing was notified, nothing to recover from
            if len(self._tasks) >= MAX_QUEUED:
                log.warning(
                    "notify.dropped", job_id=str(outcome.job_id), run_id=str(outcome.run_id)
                )
                continue
            task = asyncio.create_task(self._follow_up(outcome), name=f"notify-{outcome.run_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, within: float) -> None:
        """Let follow-ups finish within `within` seconds, then cancel the rest (shutdown)."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=within)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _follow_up(self, outcome: Outcome) -> None:
        lock = self._lock_of(outcome.job_id)
        try:
            async with lock, self._slots:
                async with asyncio.timeout(FOLLOW_UP_SECONDS):
                    await self.follow_up(outcome)
        except (PyMongoError, TimeoutError) as error:
            log.warning(
                "notify.follow_up_failed",
                job_id=str(outcome.job_id),
                run_id=str(outcome.run_id),
                error=error_summary(error),
            )
        except Exception:  # a follow-up never takes anything else down; the next one retries
            log.exception(
                "notify.follow_up_crashed", job_id=str(outcome.job_id), run_id=str(outcome.run_id)
            )
        finally:
            self._unlock(outcome.job_id)

    def _lock_of(self, job_id: ObjectId) -> asyncio.Lock:
        lock, users = self._locks.get(job_id, (asyncio.Lock(), 0))
        self._locks[job_id] = (lock, users + 1)
        return lock

    def _unlock(self, job_id: ObjectId) -> None:
        lock, users = self._locks[job_id]
        if users <= 1:
            del self._locks[job_id]
        else:
            self._locks[job_id] = (lock, users - 1)

    async def follow_up(self, outcome: Outcome) -> None:
        """The follow-up of one written slot outcome (awaited directly by tests)."""
        assert outcome.streak is not None
        if outcome.streak.event is StreakEvent.FAILED_SLOT:
            await self._after_failed_slot(outcome)
        else:
            await self._after_recovery(outcome)

    async def _after_failed_slot(self, outcome: Outcome) -> None:
        job = await self.store.job_document(outcome.job_id)
        if job is None:
            return  # deleted meanwhile
        now = utc_now()
        streak = int(job.get("failureStreak") or 0)
        paused_reason = await self._maybe_pause(outcome, job, streak, now)
        policy = notify_policy(job)
        if not wants_failure_notice(policy, paused=paused_reason is not None):
            return
        last_sent_by = (
            None
            if paused_reason is not None
            else failure_notice_not_before(now, self.settings.notify_min_interval_seconds)
        )
        before = await self.store.claim_failure_notice(outcome.job_id, now, last_sent_by)
        if before is None:
            log.info(
                "notify.deferred",
                job_id=str(outcome.job_id),
                run_id=str(outcome.run_id),
                owner_id=str(job.get("ownerId", "")),
                message="a failure notice went out less than CRON_NOTIFY_MIN_INTERVAL_SECONDS "
                "ago; this failure is counted into the next one",
            )
            return
        kind = NoticeKind.PAUSED if paused_reason is not None else NoticeKind.FAILURE
        notice = _notice(kind, outcome, job, now, paused_reason=paused_reason)
        notice = _with_counts(notice, int(before.get("unnotifiedFailures") or 0), streak)
        assert policy is not None
        await self._deliver(outcome, job, policy, notice)

    async def _maybe_pause(
        self, outcome: Outcome, job: Document, streak: int, now: datetime
    ) -> str | None:
        threshold = pause_threshold(job, self.settings.default_pause_after_failures)
        if job.get("enabled") is not True or not should_pause(streak, threshold):
            return None
        reason = auto_pause_reason(streak)
        if await self.store.auto_pause(outcome.job_id, streak, reason, now) is None:
            return None  # paused, edited or failed again meanwhile: that one decides
        log.warning(
            "job.auto_paused",
            job_id=str(outcome.job_id),
            run_id=str(outcome.run_id),
            owner_id=str(job.get("ownerId", "")),
            reason=reason,
        )
        return reason

    async def _after_recovery(self, outcome: Outcome) -> None:
        job = await self.store.claim_recovery_notice(outcome.job_id)
        if job is None:
            return
        policy = notify_policy(job)
        if not wants_recovery_notice(policy):
            return
        assert policy is not None
        await self._deliver(outcome, job, policy, _notice(NoticeKind.RECOVERY, outcome, job))

    async def _deliver(
        self, outcome: Outcome, job: Document, policy: NotifyPolicy, notice: Notice
    ) -> None:
        """Send on every channel at once; record and log how it went (never raises)."""
        channels: list[tuple[str, Any]] = []
        if policy.email is not None:
            channels.append(("email", send_email(self.settings, notice, policy.email)))
        if policy.webhook is not None:
            channels.append(("webhook", self._send_webhook(outcome, job, notice, policy.webhook)))
        results = await asyncio.gather(*(c for _, c in channels), return_exceptions=True)
        errors = [
            f"{name}: {_describe(result)}"
            for (name, _), result in zip(channels, results, strict=True)
            if isinstance(result, BaseException)
        ]
        ids = {
            "job_id": notice.job_id,
            "run_id": str(outcome.run_id),
            "owner_id": notice.owner_id,
            "kind": notice.kind.value,
        }
        if errors:
            log.warning("notify.failed", **ids, error="; ".join(errors))
        else:
            log.info("notify.sent", **ids, channels=[name for name, _ in channels])
        record = {
            "at": notice.at,
            "kind": notice.kind.value,
            "ok": not errors,
            "error": "; ".join(errors)[:500] or None,
        }
        await self.store.record_notification(outcome.job_id, record)

    async def _send_webhook(
        self, outcome: Outcome, job: Document, notice: Notice, url: str
    ) -> None:
        try:
            document = JobDocument.from_mongo(job)
        except ValidationError:
            raise DeliveryError("the job's stored document cannot be read") from None
        await send_webhook(
            self.settings,
            self.store.db,
            document,
            notice,
            url=url,
            run_id=str(outcome.run_id),
            resolver=self.resolver,
        )


def _describe(error: BaseException) -> str:
    if isinstance(error, DeliveryError):
        return str(error)
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return error_summary(error)


def _notice(
    kind: NoticeKind,
    outcome: Outcome,
    job: Document,
    now: datetime | None = None,
    *,
    paused_reason: str | None = None,
) -> Notice:
    assert outcome.streak is not None
    return Notice(
        kind=kind,
        job_id=str(outcome.job_id),
        job_name=str(job.get("name", "")),
        owner_id=str(job.get("ownerId", "")),
        slot=outcome.streak.slot,
        scheduled_for=outcome.streak.scheduled_for,
        at=now or utc_now(),
        error=outcome.error if kind is not NoticeKind.RECOVERY else None,
        paused_reason=paused_reason,
    )


def _with_counts(notice: Notice, failures: int, consecutive: int) -> Notice:
    return replace(notice, failures=max(1, failures), consecutive=consecutive)
