"""In-process workers against the test database: started per test, always stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from shared.db import Database
from shared.settings import Settings, load_settings
from worker.runner import Worker

# Short leases and heartbeats so that expiry-driven behaviour shows within seconds.
FAST = {
    "lease_seconds": 3,
    "heartbeat_seconds": 0.5,
    "shutdown_grace_seconds": 2,
    "poll_interval_seconds": 1,
    "log_json": True,
}


def worker_settings(settings: Settings, **overrides: Any) -> Settings:
    """The test's settings with fast worker timings (and any overrides)."""
    return load_settings(
        {},
        mongodb_uri=settings.mongodb_uri,
        db_name=settings.db_name,
        **{**FAST, **overrides},
    )


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(db: Database, settings: Settings) -> AsyncIterator[StartWorker]:
    """`await start_worker(**settings)`: a running Worker; all are stopped at teardown."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> Worker:
        worker = Worker(worker_settings(settings, **overrides), db)
        running.append((worker, asyncio.create_task(worker.run())))
        return worker

    yield start
    for worker, _ in running:
        worker.request_stop()
    for _, task in running:
        await asyncio.wait_for(task, 30)
