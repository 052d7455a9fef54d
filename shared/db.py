"""MongoDB client factory, collection names and the idempotent index set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import structlog
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from shared import __version__
from shared.settings import Settings

Document = dict[str, Any]
Database = AsyncDatabase[Document]
Collection = AsyncCollection[Document]

JOBS: Final = "cron_jobs"
RUNS: Final = "cron_runs"
WORKERS: Final = "cron_workers"
STREAM_TOKENS: Final = "cron_stream_tokens"
REPORTS: Final = "reports"
# Per-owner run slots (CRON_MAX_RUNNING_PER_OWNER): `{_id: ownerId, holders: [runId]}`.
OWNER_SLOTS: Final = "cron_owner_slots"
OWNER_QUOTAS: Final = "cron_owner_quotas"
RATE_LIMITS: Final = "cron_rate_limits"

# Worker heartbeat documents outlive their process by this long, for `cronjobs workers list`.
WORKER_RECORD_TTL_SECONDS: Final = 7 * 86_400

log = structlog.get_logger(__name__)


def create_client(settings: Settings, **options: Any) -> AsyncMongoClient[Document]:
    """Return an async client: timezone-aware UTC datetimes, bounded server selection."""
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        appname=f"cronjobs/{__version__}",
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        **options,
    )


def get_database(client: AsyncMongoClient[Document], settings: Settings) -> Database:
    """The service database named by `CRON_DB_NAME`."""
    return client[settings.db_name]


class IndexSetupError(RuntimeError):
    """An index cannot be created (for example duplicates where a unique index is wanted)."""


def index_plan(settings: Settings) -> dict[str, list[IndexModel]]:
    """Every index the service relies on, per collection."""
    return {
        JOBS: [
            IndexModel(
                [("ownerId", ASCENDING), ("name", ASCENDING)], unique=True, name="owner_name_unique"
            ),
            IndexModel([("enabled", ASCENDING), ("nextRunAt", ASCENDING)], name="due"),
            IndexModel([("ownerId", ASCENDING), ("_id", ASCENDING)], name="owner_list"),
            # The heartbeat's sweep for runs that ended without their job being told.
            IndexModel([("activeRunIds", ASCENDING)], name="active_runs"),
        ],
        RUNS: [
            # Exactly once per (job, slot, attempt), whatever the number of workers.
            IndexModel(
                [("jobId", ASCENDING), ("slot", ASCENDING), ("attempt", ASCENDING)],
                unique=True,
                name="job_slot_attempt_unique",
            ),
            IndexModel([("jobId", ASCENDING), ("_id", DESCENDING)], name="job_history"),
            IndexModel([("status", ASCENDING), ("notBefore", ASCENDING)], name="pending"),
            IndexModel([("status", ASCENDING), ("leaseExpiresAt", ASCENDING)], name="leases"),
            IndexModel([("ownerId", ASCENDING), ("scheduledFor", ASCENDING)], name="owner_time"),
            IndexModel(
                [("endedAt", ASCENDING)],
                expireAfterSeconds=settings.retention_seconds,
                name="retention_ttl",
            ),
        ],
        WORKERS: [
            IndexModel([("name", ASCENDING), ("lastSeenAt", DESCENDING)], name="name_seen"),
            IndexModel(
                [("lastSeenAt", ASCENDING)],
                expireAfterSeconds=WORKER_RECORD_TTL_SECONDS,
                name="seen_ttl",
            ),
        ],
        # Rate-limit windows: the TTL monitor removes ended ones (counting never relies on it).
        RATE_LIMITS: [
            IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="window_ttl")
        ],
        OWNER_SLOTS: [IndexModel([("holders", ASCENDING)], name="slot_holders")],
        REPORTS: [
            IndexModel(
                [("ownerId", ASCENDING), ("jobId", ASCENDING), ("_id", DESCENDING)],
                name="owner_job_reports",
            ),
        ],
    }


async def ensure_indexes(db: Database, settings: Settings) -> None:
    """Create the index set; safe to run any number of times, also while the service runs.

    An index whose options changed (e.g. a new retention period) is dropped and recreated.
    """
    for collection_name, models in index_plan(settings).items():
        collection = db[collection_name]
        existing = {info["name"]: info async for info in await collection.list_indexes()}
        for model in models:
            wanted = model.document
            current = existing.get(wanted["name"])
            if current is not None and _same_options(current, wanted):
                continue
            if current is not None:
                log.info("db.index_replaced", collection=collection_name, index=wanted["name"])
                await collection.drop_index(wanted["name"])
            try:
                await collection.create_indexes([model])
            except OperationFailure as error:
                raise IndexSetupError(
                    f"cannot create index {wanted['name']} on {collection_name}: {error}"
                ) from error


def _same_options(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    keys = ("unique", "expireAfterSeconds")
    return bool(
        dict(current["key"]) == dict(wanted["key"])
        and all(bool(current.get(k)) == bool(wanted.get(k)) for k in keys[:1])
        and current.get(keys[1]) == wanted.get(keys[1])
    )
