"""The dry-run answer: the validated job's next fire times and what one run would do."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.catalog import PreviewOut

EXAMPLE_EMAIL_RUN: dict[str, Any] = {
    "kind": "email",
    "from": "cronjobs@example.com",
    "to": ["alice@example.com"],
    "subject": "Stand-up",
    "headers": {"Message-ID": "<5f0c...cronjobs@example.com>", "X-Cron-Job-Id": "dry-run"},
    "text": "Stand-up at 9:00\n",
    "html": "<p>Stand-up at 9:00</p>\n",
}


class DryRunOut(PreviewOut):
    """A job body validated exactly as a create would, nothing saved, sent or resolved."""

    type: str = Field(description="The job type.", examples=["sendEmail"])
    run: dict[str, Any] = Field(
        description="What the first run (at the first fire time, attempt 1) would do, rendered "
        "by the handler's own code. `kind` says what it is: `email` (from, to, subject, "
        "headers, text, html), `httpRequest` (method, absolute url, headers including "
        "`X-Cron-Signature` signed as at the fire time, body, timeoutSeconds), "
        "`generateReport` (reportType, period, periodStart, periodEnd, timezone), "
        "`purgeSessions` (collection, deletesLastSeenBefore), `noop` (sleepSeconds, "
        "failAttempts, outcome); other types: `description`. The job and run ids, unknown "
        "before a save, read `dry-run`.",
        examples=[EXAMPLE_EMAIL_RUN],
    )
