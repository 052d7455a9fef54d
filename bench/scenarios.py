"""The fire scenarios (herd, steady state, lone job, idle), driven the same way for each system."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from bench.common import (
    JobSpec,
    System,
    expected_slots,
    next_whole_second,
    one_shot_cron,
    sleep_until,
)
from bench.procs import Child
from bench.proxy import CountingProxy
from bench.stats import fire_figures, herd_figures

HERD_TIMEOUT_SECONDS = 90.0
# How long after the last expected start the harness keeps listening for duplicates.
DUPLICATE_GRACE_SECONDS = 2.0


async def drop_database(uri: str, db_name: str) -> None:
    """Free the stand-in's memory between scenarios."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, socketTimeoutMS=120_000)
    try:
        await client.drop_database(db_name)
    finally:
        await client.close()


def _cpu(workers: list[Child]) -> float:
    return sum(worker.usage().cpu_seconds for worker in workers)


def _peak_rss(workers: list[Child]) -> float:
    return max(worker.usage().peak_rss_mb for worker in workers)


def _stop(workers: list[Child], seconds: float = 20.0) -> list[int | None]:
    return [worker.stop(seconds) for worker in workers]


async def herd(
    system: System,
    uri: str,
    n: int,
    worker_count: int,
    tag: str,
    proxy: CountingProxy | None = None,
    watch_seconds: float = HERD_TIMEOUT_SECONDS,
    stop_seconds: float = 20.0,
) -> dict[str, Any]:
    """N jobs all due at the same second; workers already running when they are created.

    With `proxy` the workers go through it, and the server time per command is recorded.
    """
    db_name = f"bench_{tag}_herd_{n}_{worker_count}"
    await drop_database(uri, db_name)
    worker_uri = proxy.uri() if proxy else uri
    workers = system.start_workers(worker_uri, db_name, worker_count, f"herd{n}")
    try:
        await system.wait_ready(uri, db_name, workers)
        slot = next_whole_second(4.0 + n * 0.0015)
        jobs = [JobSpec(f"herd-{i}", one_shot_cron(slot)) for i in range(n)]
        seed_seconds = await system.seed(uri, db_name, jobs)
        margin = slot.timestamp() - time.time()
        cpu_before = _cpu(workers)
        await sleep_until(slot.timestamp())
        if proxy:
            proxy.reset()
        cpu_at_slot = _cpu(workers)
        deadline = slot.timestamp() + watch_seconds
        while time.time() < deadline:
            try:
                if await system.started_count(uri, db_name, workers) >= n:
                    break
            except PyMongoError:
                pass  # a busy server is not the end of the scenario: look again
            await asyncio.sleep(1.0)
        await asyncio.sleep(DUPLICATE_GRACE_SECONDS)
        cpu_after = _cpu(workers)
        peak_rss = _peak_rss(workers)
        wire = proxy.reset() if proxy else None
    finally:
        exit_codes = _stop(workers, stop_seconds)
    starts = await system.collect_starts(uri, db_name, workers, jobs)
    figures = herd_figures(starts, [job.key for job in jobs], slot.timestamp())
    if wire is not None:
        figures["server_time_by_command"] = wire.server_time()
    figures.update(
        n=n,
        workers=worker_count,
        seed_seconds=round(seed_seconds, 2),
        seeded_with_margin_s=round(margin, 2),
        worker_cpu_s_before_slot=round(cpu_at_slot - cpu_before, 2),
        worker_cpu_s_herd=round(cpu_after - cpu_at_slot, 2),
        worker_peak_rss_mb=peak_rss,
        watched_s=watch_seconds,
        exit_codes=exit_codes,
        lags_ms=sorted(round(s.lag * 1000, 1) for s in starts),
    )
    await drop_database(uri, db_name)
    return figures


def _monitored_counts(workers: list[Child]) -> dict[str, int]:
    """Cumulative PyMongo command counts written by bench.worker_wrapper (ours only)."""
    total: dict[str, int] = {}
    for worker in workers:
        path = Path(str(worker.log_path).removesuffix(".log") + ".commands.json")
        if path.exists():
            for name, count in json.loads(path.read_text()).items():
                total[name] = total.get(name, 0) + count
    return total


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    names = set(after) | set(before)
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in names}
    return dict(sorted(((k, v) for k, v in delta.items() if v), key=lambda kv: -kv[1]))


async def steady(
    system: System, uri: str, proxy: CountingProxy, n: int, duration: float, tag: str
) -> dict[str, Any]:
    """N jobs firing every minute at staggered seconds, measured over a fixed window."""
    db_name = f"bench_{tag}_steady_{n}"
    await drop_database(uri, db_name)
    jobs = [JobSpec(f"steady-{i}", f"{i % 60} * * * * *") for i in range(n)]
    workers = system.start_workers(proxy.uri(), db_name, 1, "steady")
    try:
        await system.wait_ready(uri, db_name, workers)
        await system.seed(uri, db_name, jobs)
        window_start = next_whole_second(1.0).timestamp()
        await sleep_until(window_start)
        proxy.reset()
        cpu_start, monitored_start = _cpu(workers), _monitored_counts(workers)
        await sleep_until(window_start + duration)
        wire = proxy.reset()
        cpu_end, monitored_end = _cpu(workers), _monitored_counts(workers)
        await asyncio.sleep(DUPLICATE_GRACE_SECONDS)
        peak_rss = _peak_rss(workers)
    finally:
        exit_codes = _stop(workers)
    starts = await system.collect_starts(uri, db_name, workers, jobs)
    # Slots in [start, end - 1 s]: each had the whole window to start.
    expected = expected_slots(jobs, window_start, window_start + duration - 1)
    in_window = [s for s in starts if window_start <= s.scheduled <= window_start + duration - 1]
    figures = fire_figures(in_window, expected)
    runs = int(str(figures["started"])) or 1
    cpu = cpu_end - cpu_start
    monitored = _delta(monitored_end, monitored_start)
    figures.update(
        n=n,
        duration_s=duration,
        worker_cpu_s=round(cpu, 2),
        worker_cpu_s_per_1000_runs=round(cpu / runs * 1000, 2),
        worker_peak_rss_mb=peak_rss,
        wire_requests=wire.total,
        wire_requests_by_command=wire.snapshot(),
        server_time_by_command=wire.server_time(),
        wire_requests_per_run=round(wire.total / runs, 2),
        wire_data_commands_per_run=round(wire.data_commands / runs, 2),
        exit_codes=exit_codes,
        lags_ms=sorted(round(s.lag * 1000, 1) for s in in_window),
    )
    if monitored:
        figures["pymongo_commands_by_name"] = monitored
        figures["pymongo_commands_per_run"] = round(sum(monitored.values()) / runs, 2)
    await drop_database(uri, db_name)
    return figures


async def lone(system: System, uri: str, duration: float, tag: str) -> dict[str, Any]:
    """One job firing every second: the lag of a single slot, no herd."""
    db_name = f"bench_{tag}_lone"
    await drop_database(uri, db_name)
    jobs = [JobSpec("lone-0", "* * * * * *")]
    workers = system.start_workers(uri, db_name, 1, "lone")
    try:
        await system.wait_ready(uri, db_name, workers)
        await system.seed(uri, db_name, jobs)
        window_start = next_whole_second(1.0).timestamp()
        await sleep_until(window_start + duration)
        await asyncio.sleep(DUPLICATE_GRACE_SECONDS)
    finally:
        exit_codes = _stop(workers)
    starts = await system.collect_starts(uri, db_name, workers, jobs)
    expected = expected_slots(jobs, window_start, window_start + duration - 1)
    in_window = [s for s in starts if window_start <= s.scheduled <= window_start + duration - 1]
    figures = fire_figures(in_window, expected)
    figures.update(duration_s=duration, exit_codes=exit_codes)
    await drop_database(uri, db_name)
    return figures


async def idle(
    system: System,
    uri: str,
    proxy: CountingProxy,
    stored: int,
    duration: float,
    tag: str,
    settle: float = 5.0,
) -> dict[str, Any]:
    """`stored` jobs none of which is due for hours: what does waiting cost?"""
    db_name = f"bench_{tag}_idle_{stored}"
    await drop_database(uri, db_name)
    far = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=6)
    jobs = [JobSpec(f"idle-{i}", one_shot_cron(far)) for i in range(stored)]
    seed_started = time.monotonic()
    await system.seed_bulk(uri, db_name, jobs)
    seed_seconds = time.monotonic() - seed_started
    workers = system.start_workers(proxy.uri(), db_name, 1, f"idle{stored}")
    try:
        await system.wait_ready(uri, db_name, workers)
        await asyncio.sleep(settle)
        proxy.reset()
        cpu_start = _cpu(workers)
        await asyncio.sleep(duration)
        wire = proxy.reset()
        cpu = _cpu(workers) - cpu_start
        usage = [worker.usage() for worker in workers]
    finally:
        exit_codes = _stop(workers)
    per_minute: Callable[[float], float] = lambda value: round(value * 60 / duration, 2)  # noqa: E731
    await drop_database(uri, db_name)
    return {
        "stored": stored,
        "duration_s": duration,
        "seed_seconds": round(seed_seconds, 1),
        "worker_cpu_s_per_min": per_minute(cpu),
        "wire_requests_per_min": per_minute(wire.total),
        "wire_data_commands_per_min": per_minute(wire.data_commands),
        "wire_requests_by_command": wire.snapshot(),
        "worker_rss_mb": max(u.rss_mb for u in usage),
        "worker_peak_rss_mb": max(u.peak_rss_mb for u in usage),
        "exit_codes": exit_codes,
    }
