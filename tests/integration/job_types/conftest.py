"""Fixtures for handler tests: a run context, a local SMTP server and a local web server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from bson import ObjectId

from shared.db import Database
from shared.model import JobDocument, RunTrigger, idempotency_key, manual_slot_key
from shared.settings import Settings
from tests.integration.job_types.servers import SmtpSink, WebServer, free_port
from worker.handlers.context import RunContext

SIGNING_SECRET = "integration-signing-secret"

ContextFactory = Callable[..., RunContext]


def configure(settings: Settings, **changes: Any) -> Settings:
    """The test's settings with some fields changed (validated)."""
    return Settings.model_validate({**settings.model_dump(), **changes})


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, SmtpSink]]:
    """aiosmtpd on 127.0.0.1 (plain SMTP, no auth) collecting messages."""
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, sink
    finally:
        controller.stop()


@pytest.fixture
def web_server() -> Iterator[WebServer]:
    """A real HTTP server on 127.0.0.1 that verifies X-Cron-Signature."""
    server = WebServer(secret=SIGNING_SECRET.encode())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_context(db: Database, settings: Settings) -> ContextFactory:
    """Build the RunContext a worker would hand to a handler for a job of the given type."""

    def build(
        job_type: str,
        payload: dict[str, Any],
        *,
        owner_id: str = "user-1",
        name: str = "my job",
        timezone: str = "UTC",
        scheduled_for: datetime | None = None,
        run_id: ObjectId | None = None,
        settings_: Settings | None = None,
        job_id: ObjectId | None = None,
    ) -> RunContext:
        now = datetime.now(UTC)
        job = JobDocument.from_mongo(
            {
                "_id": job_id or ObjectId(),
                "ownerId": owner_id,
                "name": name,
                "type": job_type,
                "cron": "0 * * * *",
                "timezone": timezone,
                "payload": payload,
                "createdAt": now,
                "updatedAt": now,
            }
        )
        run = run_id or ObjectId()
        return RunContext(
            job=job,
            run_id=str(run),
            scheduled_for=scheduled_for or now,
            attempt=1,
            trigger=RunTrigger.MANUAL,
            idempotency_key=idempotency_key(job.id, manual_slot_key(run)),
            log=structlog.get_logger("test").bind(job_id=str(job.id), run_id=str(run)),
            db=db,
            settings=settings_ or configure(settings, http_signing_secret=SIGNING_SECRET),
        )

    return build
