"""Crash recovery time: SIGKILL a worker mid-run, time until the retry starts on another worker.

`python -m bench.crash_recovery [--rounds N]` starts the local stand-in (or uses CRON_MONGODB_URI)
and two `cronjobs-worker` processes with the DEFAULT lease, heartbeat and job retry settings,
creates one job whose handler runs for a minute, SIGKILLs the worker running it and reports the
seconds from the kill to the retry's `startedAt`. It depends only on `shared` and `tools`, so it
measures any version of the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared import jobs_repo
from shared.db import RUNS, create_client, ensure_indexes, get_database
from shared.model import JobOptions
from shared.settings import load_settings
from tools.local_mongo import LocalMongo

WORKER_BIN = Path(sys.executable).with_name("cronjobs-worker")
GIVE_UP_SECONDS = 180.0


def _spawn(uri: str, db_name: str, name: str, logs: Path) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}
    env |= {"CRON_MONGODB_URI": uri, "CRON_DB_NAME": db_name, "CRON_WORKER_NAME": name}
    env["CRON_METRICS_PORT"] = "0"  # several workers: no fixed /metrics port (9464) to fight over
    with (logs / f"{name}.log").open("ab") as out:
        return subprocess.Popen([str(WORKER_BIN)], env=env, stdout=out, stderr=subprocess.STDOUT)


async def one_round(uri: str) -> float:
    """Seconds from SIGKILL to the retry's start, for one killed run."""
    db_name = f"crash_{uuid.uuid4().hex[:8]}"
    settings = load_settings({}, mongodb_uri=uri, db_name=db_name)
    client = create_client(settings)
    db = get_database(client, settings)
    await ensure_indexes(db, settings)
    logs = Path(tempfile.mkdtemp(prefix="crash-"))
    workers = {name: _spawn(uri, db_name, name, logs) for name in ("crash-a", "crash-b")}
    try:
        await asyncio.sleep(5)  # both workers up and watching
        slot = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        spec = jobs_repo.JobSpec(
            name="crash",
            type="noop",
            cron=f"{slot.second} {slot.minute} {slot.hour} {slot.day} {slot.month} *",
            timezone="UTC",
            payload={"sleepSeconds": 60},
            enabled=True,
            options=JobOptions(),  # the defaults: 3 attempts, 10 s backoff
        )
        job = await jobs_repo.create_job(db, spec, owner_id="bench")
        deadline = time.monotonic() + 30
        while (run := await db[RUNS].find_one({"jobId": job.id, "status": "running"})) is None:
            assert time.monotonic() < deadline, "the run never started"
            await asyncio.sleep(0.05)
        victim = str(run["workerId"]).split(":")[0]
        workers[victim].send_signal(signal.SIGKILL)
        killed_at = datetime.now(UTC)
        workers[victim].wait(10)
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while True:
            retry = await db[RUNS].find_one(
                {"jobId": job.id, "attempt": 2, "startedAt": {"$ne": None}}
            )
            if retry is not None and retry.get("startedAt") is not None:
                return float((retry["startedAt"] - killed_at).total_seconds())
            assert time.monotonic() < deadline, "the retry never started"
            await asyncio.sleep(0.05)
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        await client.drop_database(db_name)
        await client.close()


async def main(rounds: int) -> None:
    external = os.environ.get("CRON_MONGODB_URI")
    server = None if external else LocalMongo()
    uri = external or (server.start() if server else "")
    try:
        seconds = [await one_round(uri) for _ in range(rounds)]
    finally:
        if server is not None:
            server.stop()
    for value in seconds:
        print(f"SIGKILL -> retry started: {value:.2f} s")
    print(f"median {statistics.median(seconds):.2f} s over {rounds} rounds (default settings)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
