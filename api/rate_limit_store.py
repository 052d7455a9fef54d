"""A Litestar Store kept in MongoDB (`cron_rate_limits`), with atomic fixed-window counters.

Every document carries `expiresAt`; a TTL index removes it once past. Expiry never depends on
the TTL monitor (which runs once a minute on MongoDB, and never on the test stand-in): a value
read after its `expiresAt` is treated as absent, and a window whose `expiresAt` has passed is
restarted from zero by the next request, whether or not the document is still there.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from litestar.stores.base import Store
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.db import RATE_LIMITS, Database, Document

VALUE_PREFIX: Final = "value:"
WINDOW_PREFIX: Final = "window:"
# Rounds of "ended or missing: restart or insert"; a round is lost only to a concurrent writer.
WINDOW_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class Window:
    """A counting window after one more hit: requests counted so far, and when it ends."""

    count: int
    reset: int  # unix seconds


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _seconds(value: int | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class MongoRateLimitStore(Store):
    """Values and counters shared by every API process; `hit` is one atomic upsert."""

    def __init__(self, db: Database) -> None:
        self.collection = db[RATE_LIMITS]

    async def hit(self, key: str, window_seconds: int, now: float | None = None) -> Window:
        """Count one request for `key`: in its current window, or in a new one starting now.

        A window is one document `{count, expiresAt}`; each step is a single conditional write,
        so concurrent hits from any number of processes are all counted: the common case is one
        `$inc` on a window that has not ended; an ended window is restarted by the one writer
        whose filter still sees it ended; a missing one is inserted (a duplicate `_id` means a
        concurrent request inserted it first, and the next round counts in theirs).
        """
        now = time.time() if now is None else now
        current, ends = _at(now), _at(now + window_seconds)
        document_id = WINDOW_PREFIX + key
        for _ in range(WINDOW_ATTEMPTS):
            counted = await self.collection.find_one_and_update(
                {"_id": document_id, "expiresAt": {"$gt": current}},
                {"$inc": {"count": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if counted is None:  # ended (the TTL monitor may not have removed it yet) or missing
                counted = await self.collection.find_one_and_update(
                    {"_id": document_id, "expiresAt": {"$lte": current}},
                    {"$set": {"count": 1, "expiresAt": ends}},
                    return_document=ReturnDocument.AFTER,
                )
            if counted is None:
                try:
                    await self.collection.insert_one(
                        {"_id": document_id, "count": 1, "expiresAt": ends}
                    )
                except DuplicateKeyError:
                    continue
                counted = {"count": 1, "expiresAt": ends}
            reset = counted["expiresAt"].timestamp()
            return Window(count=int(counted["count"]), reset=math.floor(reset))
        raise RuntimeError(f"rate-limit window {key!r} kept changing; giving up")

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        """Store `value` under `key`, expiring after `expires_in` seconds if given."""
        data = value.encode() if isinstance(value, str) else value
        seconds = _seconds(expires_in)
        expires_at = None if seconds is None else _at(time.time() + seconds)
        await self.collection.update_one(
            {"_id": VALUE_PREFIX + key},
            {"$set": {"value": data, "expiresAt": expires_at}},
            upsert=True,
        )

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        """The value of `key`, or None if absent or expired; `renew_for` extends its life."""
        document = await self._live(key)
        if document is None:
            return None
        seconds = _seconds(renew_for)
        if seconds is not None and document.get("expiresAt") is not None:
            await self.collection.update_one(
                {"_id": VALUE_PREFIX + key},
                {"$set": {"expiresAt": _at(time.time() + seconds)}},
            )
        return bytes(document["value"])

    async def delete(self, key: str) -> None:
        """Remove `key` (a no-op if absent)."""
        await self.collection.delete_one({"_id": VALUE_PREFIX + key})

    async def delete_all(self) -> None:
        """Remove every value and window."""
        await self.collection.delete_many({})

    async def exists(self, key: str) -> bool:
        """Whether `key` holds a value that has not expired."""
        return await self._live(key) is not None

    async def expires_in(self, key: str) -> int | None:
        """Whole seconds until `key` expires; None if it never does or is absent."""
        document = await self._live(key)
        if document is None or document.get("expiresAt") is None:
            return None
        return int((document["expiresAt"] - datetime.now(UTC)).total_seconds())

    async def _live(self, key: str) -> Document | None:
        document = await self.collection.find_one({"_id": VALUE_PREFIX + key})
        if document is None:
            return None
        expires_at = document.get("expiresAt")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            return None  # expired; the TTL monitor (if any) removes it later
        return document
