"""This project's worker (`cronjobs-worker`) as a system under test."""

from __future__ import annotations

import asyncio
import socket
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient

from bench.common import RAW_DIR, ROOT, JobSpec
from bench.procs import Child, spawn
from bench.stats import Start
from shared.db import JOBS, RUNS, WORKERS, Database, Document, create_client, ensure_indexes
from shared.model import JobDocument, JobStatus
from shared.schedule import Schedule
from shared.settings import Settings, load_settings

OWNER = "bench-owner"
BIN = Path(sys.executable).parent
STARTED_STATUSES = ("running", "succeeded", "failed", "timeout", "abandoned")


def job_document(
    job: JobSpec,
    now: datetime,
    owner: str = OWNER,
    job_type: str = "noop",
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `cron_jobs` document as the API would store it (default: `noop`, payload {})."""
    document = JobDocument(
        _id=ObjectId(),
        owner_id=owner,
        name=job.key,
        type=job_type,
        cron=job.cron,
        timezone="UTC",
        payload=payload or {},
        status=JobStatus.IDLE,
        next_run_at=Schedule.parse(job.cron).next_after(now),
        created_at=now,
        updated_at=now,
    )
    stored = document.model_dump(by_alias=True, mode="python")
    # Enums as their plain string values, as the API stores them.
    return {key: (str(value) if isinstance(value, str) else value) for key, value in stored.items()}


def _settings(uri: str, db_name: str) -> Settings:
    # Under a 10,000-job herd the stand-in can stall for seconds: the harness waits it out.
    return load_settings({}, mongodb_uri=uri, db_name=db_name, mongodb_timeout_ms=60_000)


@dataclass
class OurSystem:
    """`cronjobs-worker` processes, configured through CRON_* variables."""

    env: dict[str, str] = field(default_factory=dict)
    wrapper_args: list[str] = field(default_factory=list)
    name: str = "cronjobs"

    def knobs(self) -> dict[str, Any]:
        """Settings that differ from the defaults (the defaults are in docs/operations.md)."""
        defaults = load_settings({})
        return {
            "CRON_WORKER_CONCURRENCY": defaults.worker_concurrency,
            "CRON_CLAIM_BATCH_SIZE": defaults.claim_batch_size,
            "CRON_USE_CHANGE_STREAMS": defaults.use_change_streams,
            **self.env,
        }

    async def _database(
        self, uri: str, db_name: str
    ) -> tuple[AsyncMongoClient[Document], Database]:
        settings = _settings(uri, db_name)
        client = create_client(settings)
        database = client[db_name]
        await ensure_indexes(database, settings)
        return client, database

    async def seed(self, uri: str, db_name: str, jobs: list[JobSpec]) -> float:
        """insert_many the job documents (what N API creates would leave behind)."""
        started = asyncio.get_running_loop().time()
        await self.seed_bulk(uri, db_name, jobs)
        return asyncio.get_running_loop().time() - started

    async def seed_bulk(self, uri: str, db_name: str, jobs: list[JobSpec]) -> None:
        """insert_many in batches of 5,000."""
        client, database = await self._database(uri, db_name)
        try:
            now = datetime.now(UTC)
            for first in range(0, len(jobs), 5000):
                batch = [job_document(job, now) for job in jobs[first : first + 5000]]
                await database[JOBS].insert_many(batch, ordered=False)
        finally:
            await client.close()

    def start_workers(self, uri: str, db_name: str, count: int, tag: str) -> list[Child]:
        """`count` worker processes (through bench.worker_wrapper when it has arguments)."""
        workers = []
        for index in range(count):
            name = f"ours-{tag}-{index + 1}"
            env = {
                "CRON_MONGODB_URI": uri,
                "CRON_DB_NAME": db_name,
                "CRON_WORKER_NAME": name,
                "CRON_LOG_LEVEL": "WARNING",
                # Metrics on, as shipped, each worker on its own port (the default 9464 would
                # be taken by the first); `env` may switch them off with "0".
                "CRON_METRICS_PORT": str(_free_port()),
                **self.env,
            }
            if self.wrapper_args:
                out = RAW_DIR / f"{db_name}-{name}"
                command = [sys.executable, "-m", "bench.worker_wrapper", "--out", str(out)]
                command += self.wrapper_args
            else:
                command = [str(BIN / "cronjobs-worker")]
            log_path = RAW_DIR / f"{db_name}-{name}.log"
            workers.append(spawn(name, command, log_path, env=env, cwd=ROOT))
        return workers

    async def wait_ready(self, uri: str, db_name: str, workers: list[Child]) -> None:
        """A worker is up once its heartbeat document exists in `cron_workers`."""
        client, database = await self._database(uri, db_name)
        try:
            names = [worker.name for worker in workers]
            for _ in range(300):
                seen = await database[WORKERS].count_documents({"name": {"$in": names}})
                if seen >= len(workers):
                    return
                if not all(worker.alive() for worker in workers):
                    break
                await asyncio.sleep(0.1)
        finally:
            await client.close()
        raise RuntimeError(f"workers not ready: {[str(w.log_path) for w in workers]}")

    async def started_count(self, uri: str, db_name: str, workers: list[Child]) -> int:
        """Run documents that got as far as starting."""
        client, database = await self._database(uri, db_name)
        try:
            query = {"status": {"$in": STARTED_STATUSES}}
            return int(await database[RUNS].count_documents(query))
        finally:
            await client.close()

    async def collect_starts(
        self, uri: str, db_name: str, workers: list[Child], jobs: list[JobSpec]
    ) -> list[Start]:
        """Every started run: (job name, scheduledFor, startedAt) from `cron_runs`."""
        client, database = await self._database(uri, db_name)
        try:
            names = {doc["_id"]: doc["name"] async for doc in database[JOBS].find({}, {"name": 1})}
            starts = []
            query = {"status": {"$in": STARTED_STATUSES}, "trigger": "schedule"}
            async for run in database[RUNS].find(query):
                if run.get("startedAt") is None:
                    continue
                starts.append(
                    Start(
                        names.get(run["jobId"], str(run["jobId"])),
                        run["scheduledFor"].timestamp(),
                        run["startedAt"].timestamp(),
                    )
                )
            return starts
        finally:
            await client.close()

    async def run_statuses(self, uri: str, db_name: str) -> dict[str, int]:
        """How many run documents ended in each status (missed/skipped included)."""
        client, database = await self._database(uri, db_name)
        try:
            pipeline = [{"$group": {"_id": "$status", "n": {"$sum": 1}}}]
            cursor = await database[RUNS].aggregate(pipeline)
            return {doc["_id"]: doc["n"] async for doc in cursor}
        finally:
            await client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
