"""`cronjobs-worker` (also `python -m worker`): run the daemon, or `--check` its heartbeat."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from pymongo.errors import PyMongoError

from shared.db import create_client, get_database
from shared.job_types.http_signature import warn_if_default_secret
from shared.logging import configure_logging
from shared.settings import Settings, SettingsError, load_settings
from worker.backoff import brief
from worker.metrics import metrics_for
from worker.runner import Worker
from worker.store import WorkerStore

log = structlog.get_logger("worker")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit status 0 after a graceful stop, 2 on bad settings, 1 on a failed check
    (or when handlers ignored cancellation at shutdown)."""
    parser = argparse.ArgumentParser(prog="cronjobs-worker", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless a worker named CRON_WORKER_NAME (default: this host's name) sent a "
        "heartbeat within CRON_WORKER_STALE_SECONDS; prints one line",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        sys.stderr.write(f"cronjobs-worker: {error}\n")
        return 2
    if args.check:
        return asyncio.run(check(settings))
    configure_logging(settings, "worker")
    warn_if_default_secret(settings, log)
    asyncio.run(serve(settings))
    return 0


async def serve(settings: Settings) -> None:
    """Run a worker until SIGTERM/SIGINT; a second signal exits at once."""
    client = create_client(settings)
    metrics = metrics_for(settings)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    worker = Worker(settings, get_database(client, settings), metrics=metrics)
    loop = asyncio.get_running_loop()
    signals_seen: list[int] = []

    def on_signal(number: int) -> None:
        signals_seen.append(number)
        if len(signals_seen) > 1:
            log.warning("worker.killed", signal=signal.Signals(number).name)
            os._exit(128 + number)
        log.info("worker.signal", signal=signal.Signals(number).name)
        worker.request_stop()

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, on_signal, number)
    try:
        await worker.run()
    finally:
        metrics.close()
        await client.close()
    if worker.stuck_handlers:
        # Waiting for them would never end (asyncio.run awaits every task): the hard deadline.
        log.error("worker.handlers_stuck", runs=len(worker.stuck_handlers))
        os._exit(1)


async def check(settings: Settings) -> int:
    """Print one line about this worker's last heartbeat; 0 if recent enough, else 1."""
    name = settings.worker_name
    client = create_client(settings)
    try:
        seen = await WorkerStore(get_database(client, settings), "check").last_seen(name)
    except PyMongoError as error:
        sys.stdout.write(f"unknown: database unreachable: {brief(error)}\n")
        return 1
    finally:
        await client.close()
    if seen is None:
        sys.stdout.write(f"missing: no worker named {name!r} has sent a heartbeat\n")
        return 1
    age = (datetime.now(UTC) - seen).total_seconds()
    if age > settings.worker_stale_seconds:
        limit = settings.worker_stale_seconds
        sys.stdout.write(f"stale: worker {name!r} last seen {age:.0f} s ago (limit {limit:g} s)\n")
        return 1
    sys.stdout.write(f"ok: worker {name!r} last seen {age:.1f} s ago\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
