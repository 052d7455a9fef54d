"""Helpers for worker process tests: readiness, and the fire lags the suite reports."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from shared.db import Database, Document, create_client, ensure_indexes, get_database
from shared.settings import load_settings
from tests.process.conftest import WorkerProcess
from tests.support import external_mongodb_uri
from tools.local_mongo import LocalMongo

READY_SECONDS = 15.0


def wait_ready(*workers: WorkerProcess) -> None:
    """Block until each worker watches both collections (its change streams are open)."""
    for worker in workers:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            watched = {
                line.get("collection")
                for line in worker.logs()
                if line.get("event") in ("stream.opened", "stream.resumed")
            }
            if {"cron_jobs", "cron_runs"} <= watched:
                break
            if time.monotonic() > deadline or not worker.alive():
                worker.wait_for_event("no such event", 0)  # fails with the log tail
            time.sleep(0.1)


class LagBook:
    """Fire lags (startedAt - scheduledFor) of on-time scheduled runs, per scenario."""

    def __init__(self) -> None:
        self.lags: dict[str, list[float]] = {}

    def add(self, scenario: str, runs: list[Document]) -> list[float]:
        """Record the runs' lags in seconds; returns them."""
        lags = [
            (run["startedAt"] - run["scheduledFor"]) / timedelta(seconds=1)
            for run in runs
            if run.get("startedAt") is not None and run.get("trigger") == "schedule"
        ]
        self.lags.setdefault(scenario, []).extend(lags)
        return lags

    def summary(self) -> list[str]:
        lines = []
        everything: list[float] = []
        for scenario, lags in self.lags.items():
            everything.extend(lags)
            lines.append(_line(scenario, lags))
        if everything:
            lines.append(_line("all", everything))
        return lines


def _line(label: str, lags: list[Any]) -> str:
    if not lags:
        return f"{label}: no runs"
    median = statistics.median(lags) * 1000
    worst = max(lags) * 1000
    return f"{label}: {len(lags)} runs, fire lag median {median:.0f} ms, worst {worst:.0f} ms"


@pytest.fixture(scope="session")
def lag_book() -> Iterator[LagBook]:
    """Collects fire lags over the session and prints them at the end (visible with -s)."""
    book = LagBook()
    yield book
    if book.lags:
        print("\nworker fire lag (startedAt - scheduledFor):")
        for line in book.summary():
            print("  " + line)


@pytest.fixture
async def isolated_db(db_name: str) -> AsyncIterator[tuple[str, Database]]:
    """(uri, database) on a server of the test's own, for the heavy multi-worker scenarios.

    The stand-in never trims its oplog and scans all of it on every change-stream getMore, so
    its cost grows with every write the session server has seen (README, known differences);
    a fresh in-memory stand-in keeps these load tests independent of what ran before them.
    Against a real MongoDB (CRON_MONGODB_URI) that server is used.
    """
    external = external_mongodb_uri()
    server = None if external else LocalMongo()
    uri = server.start() if server is not None else external
    assert uri is not None
    settings = load_settings({}, mongodb_uri=uri, db_name=db_name)
    client = create_client(settings)
    database = get_database(client, settings)
    await ensure_indexes(database, settings)
    try:
        yield uri, database
    finally:
        await client.drop_database(db_name)
        await client.close()
        if server is not None:
            server.stop()
