"""The per-owner job quota: one counter document per owner, changed atomically.

`cron_owner_quotas` holds `{_id: ownerId, jobs: n}`. A create takes a unit with one conditional
`$inc` whose filter carries the limit (`jobs < max`), so of any number of concurrent creates, in
any number of API processes, at most `max - n` succeed; a delete (or a create whose insert
fails) gives the unit back. Without transactions, a process that dies between the counter and
the job write leaves the counter one too high (never too low: the quota errs on the safe side);
`cronjobs quota recount` recomputes the counters from the jobs.
"""

from __future__ import annotations

from typing import Final

from pymongo.errors import DuplicateKeyError

from shared.db import JOBS, OWNER_QUOTAS, Database, Document

# Rounds of "the update matched nothing: see why and try again" (a counter created or freed by
# a concurrent request between the update and the read); one or two are the rule.
ATTEMPTS: Final = 8


class QuotaExceededError(Exception):
    """The owner already has the maximum number of jobs."""

    def __init__(self, owner_id: str, limit: int) -> None:
        super().__init__(f"owner {owner_id!r} already has {limit} jobs, the maximum allowed")
        self.owner_id = owner_id
        self.limit = limit


async def take(db: Database, owner_id: str, max_jobs: int | None) -> None:
    """Count one more job for `owner_id`, or QuotaExceededError if that would pass `max_jobs`.

    `max_jobs=None` (an admin's create) counts the job without a limit. An owner without a
    counter (jobs created before counters existed) gets one initialised from a count first.
    """
    counters = db[OWNER_QUOTAS]
    query: Document = {"_id": owner_id}
    if max_jobs is not None:
        query["jobs"] = {"$lt": max_jobs}
    for _ in range(ATTEMPTS):
        if await counters.find_one_and_update(query, {"$inc": {"jobs": 1}}) is not None:
            return
        counter = await counters.find_one({"_id": owner_id})
        if counter is not None:
            if max_jobs is not None and counter["jobs"] >= max_jobs:
                raise QuotaExceededError(owner_id, max_jobs)
            continue  # created or freed by a concurrent request since the update: try again
        try:
            count = await db[JOBS].count_documents({"ownerId": owner_id})
            await counters.insert_one({"_id": owner_id, "jobs": count})
        except DuplicateKeyError:
            pass  # a concurrent request created it: use theirs
    # Only under a storm of creates and deletes at the limit: refuse rather than overshoot.
    raise QuotaExceededError(owner_id, max_jobs or 0)


async def give_back(db: Database, owner_id: str) -> None:
    """Count one job fewer (a delete, or a create that did not insert); never below zero."""
    await db[OWNER_QUOTAS].update_one({"_id": owner_id, "jobs": {"$gt": 0}}, {"$inc": {"jobs": -1}})


async def recount(db: Database, owner_id: str | None = None) -> list[tuple[str, int | None, int]]:
    """Set the counters to the number of jobs each owner has; (owner, old, new) per owner.

    Run it after a crash or a restore (`cronjobs quota recount`); a create or delete that runs
    at the same moment may be counted twice or not at all for that owner, so prefer a quiet
    moment or name the owner.
    """
    match: Document = {} if owner_id is None else {"ownerId": owner_id}
    pipeline: list[Document] = [
        {"$match": match},
        {"$group": {"_id": "$ownerId", "n": {"$sum": 1}}},
    ]
    counts = {row["_id"]: int(row["n"]) async for row in await db[JOBS].aggregate(pipeline)}
    old_query: Document = {} if owner_id is None else {"_id": owner_id}
    old = {row["_id"]: row.get("jobs") async for row in db[OWNER_QUOTAS].find(old_query)}
    if owner_id is not None:
        counts.setdefault(owner_id, 0)
    changes = []
    for owner in sorted(set(counts) | set(old), key=str):
        new = counts.get(owner, 0)
        await db[OWNER_QUOTAS].update_one({"_id": owner}, {"$set": {"jobs": new}}, upsert=True)
        changes.append((str(owner), old.get(owner), new))
    return changes
