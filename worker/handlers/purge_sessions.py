"""Handler of `purgeSessions`: delete inactive sessions in bounded batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared import db as service_db
from shared.job_types.purge_sessions import PurgeSessionsPayload
from worker.handlers.context import HandlerError, RunContext

# Never purge the service's own collections, whatever CRON_SESSIONS_COLLECTION says.
_PROTECTED_COLLECTIONS = frozenset(
    {
        service_db.JOBS,
        service_db.RUNS,
        service_db.WORKERS,
        service_db.STREAM_TOKENS,
        service_db.REPORTS,
    }
)


async def handle(ctx: RunContext, payload: PurgeSessionsPayload) -> dict[str, Any] | None:
    """Delete sessions last seen before now - inactiveDays; safe to repeat or interrupt."""
    settings = ctx.settings
    collection_name = settings.sessions_collection
    field = settings.sessions_last_seen_field
    if collection_name in _PROTECTED_COLLECTIONS or collection_name.startswith("system."):
        ctx.log.error("purge_sessions.misconfigured", CRON_SESSIONS_COLLECTION=collection_name)
        raise HandlerError("the configured collection is not a sessions store (see the log)")
    if not field or field.startswith("$"):
        ctx.log.error("purge_sessions.misconfigured", CRON_SESSIONS_LAST_SEEN_FIELD=field)
        raise HandlerError("the configured last-seen field is not a field name (see the log)")
    cutoff = datetime.now(UTC) - timedelta(days=payload.inactive_days)
    # Only dates compare with a date in MongoDB: sessions without a date there are kept.
    stale = {field: {"$lt": cutoff}}
    sessions = ctx.db[collection_name]
    deleted = batches = 0
    while True:
        cursor = sessions.find(stale, {"_id": 1}).limit(settings.purge_batch_size)
        ids = [document["_id"] async for document in cursor]
        if not ids:
            break
        # The filter is repeated so a session that became active meanwhile is kept.
        outcome = await sessions.delete_many({"_id": {"$in": ids}, **stale})
        deleted += outcome.deleted_count
        batches += 1
        ctx.log.debug("purge_sessions.batch", batch=batches, deleted=outcome.deleted_count)
        if len(ids) < settings.purge_batch_size or outcome.deleted_count == 0:
            break
    ctx.log.info("purge_sessions.done", deleted=deleted, batches=batches, cutoff=cutoff)
    return {"deleted": deleted, "batches": batches, "cutoff": cutoff.isoformat()}
