"""Queries of the per-owner run slots (`cron_owner_slots`), a part of the worker's store.

One document per owner, `{_id: ownerId, holders: [runId, ...]}`: the runs of that owner that
hold one of its `CRON_MAX_RUNNING_PER_OWNER` slots, on any worker. A slot is taken by a
conditional update per owner (`holders` has room for the runs added: the update is atomic per
document, so the list never exceeds the cap whatever the number of workers) and given back by
`$pull` when the run ends, is reaped, or does not start. Listing run ids, not a counter, makes
every write idempotent and a leak visible: a listed run that is over is released by the sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from shared.db import OWNER_SLOTS, Collection, Database

DUPLICATE_KEY: Final = 11000


class OwnerSlotStore:
    """The `cron_owner_slots` queries; `enabled` is False when no cap is configured."""

    def __init__(self, db: Database, *, enabled: bool = False) -> None:
        self.slots: Collection = db[OWNER_SLOTS]
        self.enabled = enabled

    async def holders(self, owner_ids: Iterable[str]) -> dict[str, list[ObjectId]]:
        """The runs holding each owner's slots (owners without a document are absent)."""
        cursor = self.slots.find({"_id": {"$in": list(owner_ids)}})
        return {str(doc["_id"]): list(doc.get("holders") or []) async for doc in cursor}

    async def create(self, owner_ids: Iterable[str]) -> None:
        """Create empty slot documents (one `insert_many`; existing ones are kept)."""
        documents = [{"_id": owner, "holders": []} for owner in owner_ids]
        if not documents:
            return
        try:
            await self.slots.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if error.details.get("writeConcernErrors") or any(
                item.get("code") != DUPLICATE_KEY for item in errors
            ):
                raise

    async def take(self, takes: Mapping[str, Sequence[ObjectId]], cap: int) -> int:
        """Add runs to their owners' holders where they fit under `cap` (one `bulk_write`,
        one conditional update per owner); how many owners' updates matched.

        The condition "no element at index cap - k" means at most cap - k runs hold slots
        now, so adding k keeps the list within the cap, whatever other workers do meanwhile.
        """
        operations = [
            UpdateOne(
                {"_id": owner, f"holders.{cap - len(run_ids)}": {"$exists": False}},
                {"$addToSet": {"holders": {"$each": list(run_ids)}}},
            )
            for owner, run_ids in takes.items()
            if run_ids
        ]
        if not operations:
            return 0
        result = await self.slots.bulk_write(operations, ordered=False)
        return result.matched_count

    async def release(self, run_ids: Sequence[ObjectId]) -> None:
        """Give these runs' slots back (one `update_many`; runs holding none are ignored)."""
        if run_ids:
            ids = list(run_ids)
            await self.slots.update_many(
                {"holders": {"$in": ids}}, {"$pull": {"holders": {"$in": ids}}}
            )

    async def listed(self, limit: int) -> dict[str, list[ObjectId]]:
        """Owners with runs holding slots, and those runs (for the sweep)."""
        cursor = self.slots.find({"holders.0": {"$exists": True}}, limit=limit)
        return {str(doc["_id"]): list(doc["holders"]) async for doc in cursor}
