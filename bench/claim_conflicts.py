"""Claim conflicts per run in the 1,000-job herd, with 1, 2 and 3 workers.

`python -m bench.claim_conflicts [--jobs N] [--workers 1 2 3]` runs the herd scenario of the
benchmark (all jobs due at one second, workers already running) on the local stand-in (or
CRON_MONGODB_URI) and reads each worker's `worker.stopped` log line: how many runs it started
and how many runs it tried to acquire that another worker took first (a claim conflict: one
wasted slot in an `update_many`, never a second start). Figures go to docs/scaling.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from bench.common import RAW_DIR
from bench.ours import OurSystem
from bench.scenarios import herd
from tools.local_mongo import LocalMongo


def _stopped_lines(db_name: str) -> list[dict[str, object]]:
    lines = []
    for path in RAW_DIR.glob(f"{db_name}-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"worker.stopped"' in line:
                lines.append(json.loads(line))
    return lines


async def main(jobs: int, worker_counts: list[int]) -> None:
    external = os.environ.get("CRON_MONGODB_URI")
    server = None if external else LocalMongo()
    uri = external or (server.start() if server else "")
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    try:
        for count in worker_counts:
            tag = f"conflicts{count}"
            db_name = f"bench_{tag}_herd_{jobs}_{count}"
            for path in RAW_DIR.glob(f"{db_name}-*.log"):
                path.unlink()
            system = OurSystem(env={"CRON_LOG_LEVEL": "INFO", "CRON_LOG_JSON": "true"})
            figures = await herd(system, uri, jobs, count, tag)
            stopped = _stopped_lines(db_name)
            started = sum(int(str(line.get("started_runs", 0))) for line in stopped)
            conflicts = sum(int(str(line.get("claim_conflicts", 0))) for line in stopped)
            per_run = conflicts / started if started else float("nan")
            print(
                f"{count} worker(s): {started} runs started, {conflicts} claim conflicts "
                f"({per_run:.3f} per run), fires/s {figures.get('fires_per_s')}, "
                f"duplicates {figures.get('duplicates')}"
            )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.workers))
