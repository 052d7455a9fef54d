"""The hostile-request record and the body builders the corpus modules share."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.integration.api.helpers import ALICE, echo_job


@dataclass(frozen=True)
class Hostile:
    """One hostile request; `{alice}` / `{bob}` in the path become those owners' job ids, and
    `{purge}` the admin-only purgeSessions job an admin put in alice's account."""

    name: str
    status: int
    method: str = "POST"
    path: str = "/jobs"
    body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # replaces alice's token when set ("" sends none)
    fields: frozenset[str] | None = None  # for 422s: exactly these fields are named
    admin: bool = False  # sent by an admin (root) instead of alice
    detail: str = ""  # the answer's `detail` contains this (refused for the stated reason)


def job(**fields: Any) -> dict[str, Any]:
    return {**echo_job("hostile"), **fields}


def deep_array(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(levels):
        value = {"n": value}
    return value


NOW = int(time.time())
OID = "6740a1f2c3d4e5f601234567"


def http_job(url: str) -> dict[str, Any]:
    return job(type="httpRequest", payload={"url": url})


def email_job(**payload: Any) -> dict[str, Any]:
    base = {"to": "a@example.com", "subject": "Hi", "template": "reminder", "params": {}}
    return job(type="sendEmail", payload={**base, **payload})


def duplicate_owner_ids(first: str, last: str) -> bytes:
    """A valid create body but for two `ownerId` keys (json.dumps cannot write duplicates)."""
    body = json.dumps(job()).removesuffix("}")
    return f'{body}, "ownerId": {json.dumps(first)}, "ownerId": {json.dumps(last)}}}'.encode()


F = frozenset

# An admin-only job an admin put in alice's account (the corpus world has one).
PURGE: dict[str, Any] = {
    "name": "purge for alice",
    "type": "purgeSessions",
    "cron": "0 3 * * *",
    "ownerId": ALICE,
    "payload": {"inactiveDays": 30},
}


def typed_job(job_type: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return job(type=job_type, payload=payload, **fields)
