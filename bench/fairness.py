"""Per-owner fairness and start jitter under a herd (issue 15, items 4 and 7).

`python -m bench.fairness [--big 5000] [--owners 50] [--per-owner 10] [--workers 1]
[--cap 0] [--jitter-jobs 1000] [--jitter 30]` on the local stand-in (or CRON_MONGODB_URI):

1. *fairness*: `--owners` small owners with `--per-owner` jobs each, all due at one second,
   once alone and once next to one owner with `--big` jobs due at the same second; the small
   owners' fire lag (handler start minus the slot) p50/p99 in both, and the
   ratio (goal: at most 2x). An unmeasured small-owner herd runs first to warm the server.
   `--cap` sets CRON_MAX_RUNNING_PER_OWNER for the workers.
2. *jitter*: `--jitter-jobs` jobs due at one second with `jitterSeconds: --jitter`: how the
   starts spread over the window (per tenth of it), lag behind each run's `notBefore`, and
   that no slot is lost (every job started exactly once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import datetime, timedelta
from typing import Any

from bench.common import RAW_DIR, JobSpec, next_whole_second, one_shot_cron, sleep_until
from bench.ours import STARTED_STATUSES, OurSystem, job_document
from bench.scenarios import drop_database
from bench.stats import lag_summary_ms
from shared.db import JOBS, RUNS, create_client, ensure_indexes
from shared.settings import load_settings
from tools.local_mongo import LocalMongo

WATCH_SECONDS = 180.0


async def _seed(uri: str, db_name: str, owners: dict[str, int], slot: datetime, jitter: int) -> int:
    settings = load_settings({}, mongodb_uri=uri, db_name=db_name, mongodb_timeout_ms=60_000)
    client = create_client(settings)
    try:
        database = client[db_name]
        await ensure_indexes(database, settings)
        now = datetime.now(slot.tzinfo)
        documents = []
        for owner, count in owners.items():
            for index in range(count):
                spec = JobSpec(f"{owner}-{index}", one_shot_cron(slot))
                documents.append(job_document(spec, now, owner=owner) | {"jitterSeconds": jitter})
        for first in range(0, len(documents), 5000):
            await database[JOBS].insert_many(documents[first : first + 5000], ordered=False)
        return len(documents)
    finally:
        await client.close()


async def _runs(uri: str, db_name: str) -> list[dict[str, Any]]:
    settings = load_settings({}, mongodb_uri=uri, db_name=db_name, mongodb_timeout_ms=60_000)
    client = create_client(settings)
    try:
        return await client[db_name][RUNS].find({}).to_list()
    finally:
        await client.close()


async def _herd(
    system: OurSystem, uri: str, tag: str, owners: dict[str, int], workers: int, jitter: int = 0
) -> list[dict[str, Any]]:
    """Seed the owners' jobs due at one second (workers running), wait until all started."""
    db_name = f"bench_fair_{tag}"
    await drop_database(uri, db_name)
    children = system.start_workers(uri, db_name, workers, tag)
    try:
        await system.wait_ready(uri, db_name, children)
        total = sum(owners.values())
        slot = next_whole_second(4.0 + total * 0.0015)
        await _seed(uri, db_name, owners, slot, jitter)
        await sleep_until(slot.timestamp() + jitter)
        deadline = time.time() + WATCH_SECONDS
        while time.time() < deadline:
            if await system.started_count(uri, db_name, children) >= total:
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(2.0)  # duplicates would show by now
    finally:
        for child in children:
            child.stop(20.0)
    runs = await _runs(uri, db_name)
    await drop_database(uri, db_name)
    return runs


def _lag(run: dict[str, Any]) -> float:
    """Handler start minus the slot (a run deferred by the owner cap moves its notBefore)."""
    return float((run["startedAt"] - run["scheduledFor"]).total_seconds())


def _lag_behind_not_before(run: dict[str, Any]) -> float:
    """Handler start minus the jittered start."""
    return float((run["startedAt"] - run["notBefore"]).total_seconds())


def _started(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if r["status"] in STARTED_STATUSES and r.get("startedAt")]


async def fairness(system: OurSystem, uri: str, args: argparse.Namespace) -> dict[str, Any]:
    small = {f"small-{n}": args.per_owner for n in range(args.owners)}
    # The first herd on a fresh stand-in runs on a cold JVM; measuring it would flatter the ratio.
    await _herd(system, uri, "warmup", small, args.workers)
    alone = await _herd(system, uri, "alone", small, args.workers)
    crowded = await _herd(system, uri, "crowded", {"big": args.big, **small}, args.workers)
    small_alone = [_lag(r) for r in _started(alone)]
    small_crowded = [_lag(r) for r in _started(crowded) if r["ownerId"] != "big"]
    big = [_lag(r) for r in _started(crowded) if r["ownerId"] == "big"]
    alone_ms, crowded_ms = lag_summary_ms(small_alone), lag_summary_ms(small_crowded)
    return {
        "small_owners_alone_ms": alone_ms,
        "small_owners_next_to_big_owner_ms": crowded_ms,
        "p99_ratio": round(crowded_ms["p99"] / alone_ms["p99"], 2) if alone_ms["p99"] else None,
        "big_owner_ms": lag_summary_ms(big),
        "statuses_crowded": _count(r["status"] for r in crowded),
    }


async def jitter(system: OurSystem, uri: str, args: argparse.Namespace) -> dict[str, Any]:
    owners = {f"owner-{n}": args.jitter_jobs // 10 for n in range(10)}
    runs = await _herd(system, uri, "jitter", owners, args.workers, args.jitter)
    started = _started(runs)
    window = timedelta(seconds=args.jitter)
    offsets = [(r["startedAt"] - r["scheduledFor"]) / window for r in started]
    tenths = [0] * 10
    for offset in offsets:
        tenths[min(9, max(0, int(offset * 10)))] += 1
    return {
        "jobs": sum(owners.values()),
        "started": len(started),
        "distinct_jobs_started": len({r["jobId"] for r in started}),
        "statuses": _count(r["status"] for r in runs),
        "starts_per_tenth_of_window": tenths,
        "lag_behind_not_before_ms": lag_summary_ms(_lag_behind_not_before(r) for r in started),
        "not_before_inside_window": all(
            r["scheduledFor"] <= r["notBefore"] < r["scheduledFor"] + window for r in started
        ),
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


async def main(args: argparse.Namespace) -> None:
    external = os.environ.get("CRON_MONGODB_URI")
    server = None if external else LocalMongo()
    uri = external or (server.start() if server else "")
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    env = {"CRON_MAX_RUNNING_PER_OWNER": str(args.cap), "CRON_METRICS_PORT": "0"}
    system = OurSystem(env=env)
    try:
        report = {"knobs": system.knobs(), "fairness": await fairness(system, uri, args)}
        if args.jitter_jobs:
            report["jitter"] = await jitter(system, uri, args)
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=5000)
    parser.add_argument("--owners", type=int, default=50)
    parser.add_argument("--per-owner", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cap", type=int, default=0)
    parser.add_argument("--jitter-jobs", type=int, default=1000)
    parser.add_argument("--jitter", type=int, default=30)
    asyncio.run(main(parser.parse_args()))
