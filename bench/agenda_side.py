"""Agenda 6 (Node) as a system under test: npm install, seeding, worker processes, run records."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient

from bench.common import BENCH_DIR, RAW_DIR, JobSpec, slot_at_or_before
from bench.procs import Child, spawn
from bench.stats import Start

SCRIPT = BENCH_DIR / "agenda_bench.mjs"
COLLECTION = "agendaJobs"


def ensure_installed() -> str:
    """Install the locked Agenda packages into bench/node_modules; return Agenda's version."""
    node_modules = BENCH_DIR / "node_modules"
    if not (node_modules / "agenda" / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is required for the Agenda side of the benchmark")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=BENCH_DIR,
            check=True,
            stdin=subprocess.DEVNULL,
        )
    package = json.loads((node_modules / "agenda" / "package.json").read_text())
    return str(package["version"])


def with_db(uri: str, db_name: str) -> str:
    """`mongodb://host:port/?opts` -> `mongodb://host:port/<db>?opts`."""
    base, _, query = uri.partition("?")
    return f"{base.rstrip('/')}/{db_name}" + (f"?{query}" if query else "")


@dataclass
class AgendaSystem:
    """Agenda 6 + @agendajs/mongo-backend + the official Node driver."""

    # Chosen by a sweep on this machine (see docs/benchmarks.md): with the default unlimited lock
    # limit Agenda locks every due job before running any, which at 10,000 jobs on the stand-in
    # started nothing within 240 s; 100 per process with a 200 ms cycle starts work at once.
    process_every_ms: int = 200
    max_concurrency: int = 32
    concurrency: int = 32
    lock_limit: int = 100
    default_lock_limit: int = 100
    name: str = "Agenda 6"
    versions: dict[str, str] = field(default_factory=dict)

    def knobs(self) -> dict[str, Any]:
        """The Agenda options every worker process is started with."""
        return {
            "processEvery_ms": self.process_every_ms,
            "maxConcurrency": self.max_concurrency,
            "defaultConcurrency": self.concurrency,
            "define.concurrency": self.concurrency,
            "lockLimit": self.lock_limit,
            "defaultLockLimit": self.default_lock_limit,
            "defaultLockLifetime_ms": 600_000,
        }

    def install(self) -> None:
        """npm ci, and remember the versions for the report."""
        self.versions["agenda"] = ensure_installed()
        for package in ("@agendajs/mongo-backend", "mongodb"):
            manifest = BENCH_DIR / "node_modules" / package / "package.json"
            self.versions[package] = str(json.loads(manifest.read_text())["version"])
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
        self.versions["node"] = node.stdout.strip()

    async def seed(self, uri: str, db_name: str, jobs: list[JobSpec]) -> float:
        """Create the jobs with Agenda's own API (create().repeatEvery().save())."""
        jobs_file = RAW_DIR / f"{db_name}-jobs.json"
        jobs_file.parent.mkdir(parents=True, exist_ok=True)
        jobs_file.write_text(json.dumps([[job.key, job.cron] for job in jobs]))
        process = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), "seed", "--uri", uri, "--db", db_name, "--jobs", str(jobs_file),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        output, _ = await process.communicate()
        text = output.decode()
        if process.returncode != 0 or "SEEDED" not in text:
            raise RuntimeError(f"Agenda seeding failed: {text[-2000:]}")
        return int(text.split("SEEDED", 1)[1].split()[1]) / 1000

    async def seed_bulk(self, uri: str, db_name: str, jobs: list[JobSpec]) -> None:
        """Seed one job through Agenda, then store clones of its document (new _id and key)."""
        await self.seed(uri, db_name, jobs[:1])
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        try:
            collection = client[db_name][COLLECTION]
            template = await collection.find_one({"data.key": jobs[0].key})
            if template is None:
                raise RuntimeError("Agenda did not store the template job")
            batch: list[dict[str, Any]] = []
            for job in jobs[1:]:
                clone = dict(template, _id=ObjectId(), data={"key": job.key})
                clone["repeatInterval"] = job.cron
                batch.append(clone)
                if len(batch) == 5000:
                    await collection.insert_many(batch, ordered=False)
                    batch = []
            if batch:
                await collection.insert_many(batch, ordered=False)
        finally:
            await client.close()

    def start_workers(self, uri: str, db_name: str, count: int, tag: str) -> list[Child]:
        """`count` Node processes, each one Agenda instance with the knobs above."""
        workers = []
        for index in range(count):
            name = f"agenda-{tag}-{index + 1}"
            command = [
                "node", str(SCRIPT), "work", "--uri", uri, "--db", db_name, "--name", name,
                "--process-every", str(self.process_every_ms),
                "--max-concurrency", str(self.max_concurrency),
                "--concurrency", str(self.concurrency),
                "--lock-limit", str(self.lock_limit),
                "--default-lock-limit", str(self.default_lock_limit),
            ]  # fmt: skip
            workers.append(spawn(name, command, RAW_DIR / f"{db_name}-{name}.log", cwd=BENCH_DIR))
        return workers

    async def wait_ready(self, uri: str, db_name: str, workers: list[Child]) -> None:
        """Each process prints READY after `agenda.start()`."""
        for _ in range(300):
            if all("READY" in _read(worker) for worker in workers):
                return
            if not all(worker.alive() for worker in workers):
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"Agenda workers not ready: {[w.log_path for w in workers]}")

    async def started_count(self, uri: str, db_name: str, workers: list[Child]) -> int:
        """RUN lines printed so far (they are flushed every 200 ms)."""
        return sum(_read(worker).count("\nRUN ") for worker in workers)

    async def collect_starts(
        self, uri: str, db_name: str, workers: list[Child], jobs: list[JobSpec]
    ) -> list[Start]:
        """RUN lines -> starts; the slot is the job's latest cron time at or before the start."""
        crons = {job.key: job.cron for job in jobs}
        starts = []
        for worker in workers:
            for line in _read(worker).splitlines():
                if not line.startswith("RUN "):
                    continue
                _, key, millis = line.split()
                started = int(millis) / 1000
                slot = _cached_slot(crons[key], started)
                if slot is not None:
                    starts.append(Start(key, slot, started))
        return starts


def _read(worker: Child) -> str:
    return "\n" + worker.log_path.read_text(errors="replace")


@lru_cache(maxsize=200_000)
def _cached_slot_at(cron: str, whole_second: int) -> float | None:
    return slot_at_or_before(cron, whole_second, window_seconds=900)


def _cached_slot(cron: str, started: float) -> float | None:
    # Slots are whole seconds, so the slot at or before `started` is the one at or before floor.
    return _cached_slot_at(cron, int(started))
