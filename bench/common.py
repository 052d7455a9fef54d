"""What both systems under test share: job specs, the system interface, paths, helpers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bench.procs import Child
from bench.stats import Start
from shared.schedule import Schedule

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
RAW_DIR = RESULTS_DIR / "raw"


@dataclass(frozen=True)
class JobSpec:
    """One benchmark job: a stable key (our job name, Agenda's `data.key`) and its cron."""

    key: str
    cron: str


class System(Protocol):
    """A scheduler under test, driven the same way for both."""

    name: str

    def knobs(self) -> dict[str, Any]:
        """Tuning values used, for the report."""
        ...

    async def seed(self, uri: str, db_name: str, jobs: list[JobSpec]) -> float:
        """Create the jobs through the system's normal path; return the seconds it took."""
        ...

    async def seed_bulk(self, uri: str, db_name: str, jobs: list[JobSpec]) -> None:
        """Store many jobs fast (idle scenario), in the documents the system itself writes."""
        ...

    def start_workers(self, uri: str, db_name: str, count: int, tag: str) -> list[Child]:
        """Start `count` worker processes against `uri`/`db_name`."""
        ...

    async def wait_ready(self, uri: str, db_name: str, workers: list[Child]) -> None:
        """Return once every worker is up (raise if one is not within a deadline)."""
        ...

    async def started_count(self, uri: str, db_name: str, workers: list[Child]) -> int:
        """Runs started so far (cheap; polled during a scenario)."""
        ...

    async def collect_starts(
        self, uri: str, db_name: str, workers: list[Child], jobs: list[JobSpec]
    ) -> list[Start]:
        """Every handler start, with the slot it was for (after the workers stopped)."""
        ...


def one_shot_cron(slot: datetime) -> str:
    """A seconds-field cron that fires at `slot` (UTC) and next a year later."""
    return f"{slot.second} {slot.minute} {slot.hour} {slot.day} {slot.month} *"


def next_whole_second(after_seconds: float) -> datetime:
    """The first whole UTC second at least `after_seconds` from now."""
    moment = datetime.now(UTC) + timedelta(seconds=after_seconds)
    return moment.replace(microsecond=0) + timedelta(seconds=1)


def slot_at_or_before(cron: str, instant: float, window_seconds: float = 3600.0) -> float | None:
    """The latest fire time of `cron` (UTC) at or before `instant` (epoch s), within a window."""
    end = datetime.fromtimestamp(instant, UTC)
    slots = Schedule.parse(cron).slots_between(end - timedelta(seconds=window_seconds), end, 5000)
    return slots[-1].timestamp() if slots else None


def expected_slots(jobs: list[JobSpec], start: float, end: float) -> set[tuple[str, float]]:
    """Every (job key, slot) with start <= slot <= end."""
    first, last = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    pairs: set[tuple[str, float]] = set()
    for job in jobs:
        for slot in Schedule.parse(job.cron).slots_between(first, last, 100_000):
            pairs.add((job.key, slot.timestamp()))
    return pairs


async def sleep_until(epoch_seconds: float) -> None:
    """Sleep until the wall clock reaches `epoch_seconds`."""
    delay = epoch_seconds - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
