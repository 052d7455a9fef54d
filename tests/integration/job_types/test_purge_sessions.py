"""purgeSessions handler against the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.db import JOBS, Database
from shared.job_types.purge_sessions import PurgeSessionsPayload
from shared.settings import Settings
from tests.integration.job_types.conftest import ContextFactory, configure
from worker.handlers import purge_sessions
from worker.handlers.context import HandlerError

PAYLOAD = {"inactiveDays": 30}


def _at(path: str, value: object) -> dict[str, object]:
    """{"a.b": v} as the nested document {"a": {"b": v}}."""
    head, _, rest = path.partition(".")
    return {head: _at(rest, value) if rest else value}


async def _seed(db: Database, collection: str, field: str, stale: int) -> None:
    now = datetime.now(UTC)
    documents = [
        {"user": f"old-{i}", **_at(field, now - timedelta(days=31 + i))} for i in range(stale)
    ]
    documents += [
        {"user": "recent", **_at(field, now - timedelta(days=29))},
        {"user": "no-activity-field"},
        # Not a date: MongoDB never compares it with one.
        {"user": "text-activity", **_at(field, "2001-01-01")},
    ]
    await db[collection].insert_many(documents)


async def test_deletes_only_stale_sessions_in_batches_and_is_idempotent(
    db: Database, settings: Settings, make_context: ContextFactory
) -> None:
    await _seed(db, "sessions", "lastSeenAt", stale=7)
    configured = configure(settings, purge_batch_size=3)
    ctx = make_context("purgeSessions", PAYLOAD, settings_=configured)
    payload = PurgeSessionsPayload.model_validate(PAYLOAD)

    result = await purge_sessions.handle(ctx, payload)

    assert result is not None
    assert result["deleted"] == 7
    assert result["batches"] == 3
    cutoff = datetime.fromisoformat(result["cutoff"])
    assert abs((datetime.now(UTC) - timedelta(days=30) - cutoff).total_seconds()) < 60
    left = sorted([d["user"] async for d in db["sessions"].find({}, {"user": 1})])
    assert left == ["no-activity-field", "recent", "text-activity"]

    again = await purge_sessions.handle(ctx, payload)
    assert again is not None
    assert (again["deleted"], again["batches"]) == (0, 0)


async def test_collection_and_field_come_from_settings(
    db: Database, settings: Settings, make_context: ContextFactory
) -> None:
    await _seed(db, "app_sessions", "meta.seen", stale=2)
    await _seed(db, "sessions", "lastSeenAt", stale=2)
    configured = configure(
        settings, sessions_collection="app_sessions", sessions_last_seen_field="meta.seen"
    )
    ctx = make_context("purgeSessions", PAYLOAD, settings_=configured)
    result = await purge_sessions.handle(ctx, PurgeSessionsPayload.model_validate(PAYLOAD))
    assert result is not None and result["deleted"] == 2
    assert await db["app_sessions"].count_documents({}) == 3
    assert await db["sessions"].count_documents({}) == 5


@pytest.mark.parametrize("collection", [JOBS, "cron_runs", "system.users"])
async def test_refuses_to_purge_the_service_collections(
    db: Database, settings: Settings, make_context: ContextFactory, collection: str
) -> None:
    configured = configure(settings, sessions_collection=collection)
    ctx = make_context("purgeSessions", PAYLOAD, settings_=configured)
    with pytest.raises(HandlerError, match="is not a sessions store"):
        await purge_sessions.handle(ctx, PurgeSessionsPayload.model_validate(PAYLOAD))
