"""Seed data for the dashboard benchmark: jobs, runs and workers shaped like a busy deployment."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from shared.db import JOBS, RUNS, WORKERS, Database
from shared.model import slot_key

TYPES = ("sendEmail", "httpRequest", "generateReport")
# Final outcomes in roughly the proportions a healthy deployment shows.
OUTCOMES = (
    ("succeeded", 0.90),
    ("failed", 0.04),
    ("timeout", 0.02),
    ("abandoned", 0.01),
    ("skipped", 0.02),
    ("missed", 0.01),
)
ERRORS = ("HTTP 500 from endpoint", "SMTP relay refused", "timed out after 60 s", "lease expired")
BATCH = 5000


def _job(index: int, now: datetime, rng: random.Random) -> dict[str, Any]:
    enabled = rng.random() > 0.1
    status = "paused" if not enabled else rng.choice(("idle", "idle", "idle", "running", "failed"))
    return {
        "_id": ObjectId(),
        "ownerId": f"user-{index % 500:04d}",
        "name": f"job {index:05d}",
        "type": TYPES[index % len(TYPES)],
        "cron": "*/5 * * * *",
        "timezone": "Europe/Berlin",
        "payload": {"url": "https://example.com/hook"},
        "enabled": enabled,
        "status": status,
        "nextRunAt": now + timedelta(seconds=rng.randint(-30, 3600)) if enabled else None,
        "lastRunAt": now - timedelta(seconds=rng.randint(1, 86_400)),
        "lastError": None,
        "lastDurationMs": rng.randint(5, 5000),
        "activeRunIds": [],
        "runCount": rng.randint(0, 1000),
        "failureCount": rng.randint(0, 50),
        "version": 1,
        "createdAt": now - timedelta(days=30),
        "updatedAt": now - timedelta(days=1),
        "retry": {"maxAttempts": 3, "backoffSeconds": 10.0, "backoffMaxSeconds": 600.0},
        "timeoutSeconds": 60,
        "overlapPolicy": "skip",
        "misfirePolicy": "runOnce",
        "misfireGraceSeconds": 300,
    }


def _run(job: dict[str, Any], ended: datetime, rng: random.Random) -> dict[str, Any]:
    roll, status = rng.random(), "succeeded"
    for outcome, share in OUTCOMES:
        if roll < share:
            status = outcome
            break
        roll -= share
    scheduled = ended - timedelta(seconds=rng.uniform(0.1, 30))
    started = scheduled + timedelta(seconds=rng.expovariate(5))
    return {
        "_id": ObjectId(),
        "jobId": job["_id"],
        "ownerId": job["ownerId"],
        "jobName": job["name"],
        "type": job["type"],
        "slot": slot_key(scheduled) + f"#{rng.random()}",
        "scheduledFor": scheduled,
        "trigger": "schedule",
        "attempt": 1,
        "status": status,
        "workerId": "bench-worker",
        "createdAt": scheduled,
        "startedAt": started,
        "endedAt": ended,
        "durationMs": int((ended - started).total_seconds() * 1000),
        "error": rng.choice(ERRORS) if status in {"failed", "timeout", "abandoned"} else None,
    }


async def seed(db: Database, *, jobs: int, runs: int, days: float, seed: int = 14) -> None:
    """Insert `jobs` jobs and `runs` final runs spread over the last `days` days, plus 3 workers."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    job_docs = [_job(index, now, rng) for index in range(jobs)]
    for start in range(0, len(job_docs), BATCH):
        await db[JOBS].insert_many(job_docs[start : start + BATCH], ordered=False)
    span = days * 86_400
    batch: list[dict[str, Any]] = []
    for _ in range(runs):
        ended = now - timedelta(seconds=rng.uniform(0, span))
        batch.append(_run(rng.choice(job_docs), ended, rng))
        if len(batch) == BATCH:
            await db[RUNS].insert_many(batch, ordered=False)
            batch = []
    if batch:
        await db[RUNS].insert_many(batch, ordered=False)
    for index in range(3):
        await db[WORKERS].insert_one(
            {
                "_id": f"bench-{index}",
                "name": f"worker-{index}",
                "host": "bench",
                "pid": 1000 + index,
                "version": "0.1.0",
                "startedAt": now - timedelta(hours=1),
                "lastSeenAt": now - timedelta(seconds=index),
                "runsInFlight": index,
                "mode": "streams",
            }
        )
