"""Who a run is: the identity a handler stamps on what it sends (headers, Message-ID).

The worker builds it from the claimed run; a dry-run builds one for a job that does not exist
yet (`dry_run_identity`), so the previewed email or request is rendered by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from shared.model import slot_key

# What a dry-run shows where a saved job and a queued run would have their ids.
DRY_RUN_ID: Final = "dry-run"


@dataclass(frozen=True)
class RunIdentity:
    """The job and run an attempt belongs to."""

    job_id: str
    job_name: str
    run_id: str
    attempt: int
    scheduled_for: datetime
    # `jobId:slot`, stable across retries of the same slot.
    idempotency_key: str
    # The job's IANA time zone (a report's period is measured in it).
    timezone: str = "UTC"


def dry_run_identity(job_name: str, scheduled_for: datetime, timezone: str) -> RunIdentity:
    """The identity of the first attempt of an unsaved job's slot (ids: `dry-run`)."""
    return RunIdentity(
        job_id=DRY_RUN_ID,
        job_name=job_name,
        run_id=DRY_RUN_ID,
        attempt=1,
        scheduled_for=scheduled_for,
        idempotency_key=f"{DRY_RUN_ID}:{slot_key(scheduled_for)}",
        timezone=timezone,
    )


def utc_text(moment: datetime) -> str:
    """`2026-11-23T07:00:00Z`: an instant as previews show it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
