"""What a handler receives: the run's identity, its job, a bound logger and shared resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel
from structlog.typing import FilteringBoundLogger

from shared.db import Database
from shared.model import JobDocument, RunTrigger
from shared.settings import Settings


@dataclass(frozen=True)
class RunContext:
    """Everything a handler may use; handlers never reach the worker's store."""

    job: JobDocument
    run_id: str
    scheduled_for: datetime
    attempt: int
    trigger: RunTrigger
    # `jobId:slot`, stable across retries of the same slot.
    idempotency_key: str
    log: FilteringBoundLogger
    db: Database
    settings: Settings
    http: httpx.AsyncClient


# A handler returns a small JSON-able summary kept on the run record (or None).
Handler = Callable[[RunContext, Any], Awaitable[dict[str, Any] | None]]


class HandlerError(Exception):
    """A handler's expected failure: its message (one line) becomes the run's error."""


class PermanentHandlerError(HandlerError):
    """A failure retries cannot fix (e.g. a redirect to a malformed Location): not retried."""


def payload_of(model: BaseModel) -> dict[str, Any]:
    """A payload model as a plain dict (by alias), for logging or storage."""
    return model.model_dump(by_alias=True, mode="json")
