"""Database commands per successful run, counted with PyMongo command monitoring.

The figure the benchmark reports: a herd of jobs due at the same second, one worker with the
default settings, every command its client sends while the herd runs (claims, advances,
finishes, lookups, heartbeats, change-stream getMores) divided by the runs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from pymongo import monitoring

from shared.db import JOBS, RUNS, Database, create_client, get_database
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import create_job, cron_at, slot_in, wait_for
from worker.runner import Worker

HERD = 300
MAX_COMMANDS_PER_RUN = 3


class CommandCounter(monitoring.CommandListener):
    """Counts commands by name while `counting` is set."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.counting = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.counting:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def monitored(settings: Settings) -> AsyncIterator[tuple[Database, CommandCounter]]:
    counter = CommandCounter()
    client = create_client(settings, event_listeners=[counter])
    try:
        yield get_database(client, settings), counter
    finally:
        await client.close()


async def test_a_herd_costs_at_most_three_commands_per_run(
    db: Database, settings: Settings, monitored: tuple[Database, CommandCounter]
) -> None:
    worker_db, counter = monitored
    slot = slot_in(4)
    await asyncio.gather(*(create_job(db, cron_at(slot)) for _ in range(HERD)))
    worker = Worker(worker_settings(settings, lease_seconds=30, heartbeat_seconds=10), worker_db)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(1.5)  # streams open, first lookups done; the slot is still ahead
        counter.counting = True
        await wait_for(lambda: _all_finished(db), 20, "every run finished", interval=0.05)
        counter.counting = False
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    succeeded = await db[RUNS].count_documents({"status": "succeeded"})
    assert succeeded == HERD
    total = sum(counter.counts.values())
    print(
        f"\n{total} commands for {succeeded} runs: {total / succeeded:.2f} per run", counter.counts
    )
    assert total / succeeded <= MAX_COMMANDS_PER_RUN


async def _all_finished(db: Database) -> bool:
    return await db[JOBS].count_documents({"runCount": 1, "status": "idle"}) == HERD
