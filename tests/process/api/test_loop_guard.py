"""A job calling run-now with its owner's token, through the real worker handler and a real API
process: refused with 409 because the call carries the worker's run headers (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from bson import ObjectId

from shared.job_types.http_request import HttpRequestPayload
from shared.model import JobDocument, RunTrigger, idempotency_key, manual_slot_key
from shared.settings import Settings
from tests.process.api.support import ApiProcess, auth, job_body
from worker.handlers import http_request
from worker.handlers.context import HandlerError, RunContext

pytestmark = pytest.mark.process


def _context(settings: Settings, payload: dict[str, Any]) -> RunContext:
    now = datetime.now(UTC)
    job = JobDocument.from_mongo(
        {
            "_id": ObjectId(),
            "ownerId": "alice",
            "name": "chain",
            "type": "httpRequest",
            "cron": "0 * * * *",
            "timezone": "UTC",
            "payload": payload,
            "createdAt": now,
            "updatedAt": now,
        }
    )
    run = ObjectId()
    return RunContext(
        job=job,
        run_id=str(run),
        scheduled_for=now,
        attempt=1,
        trigger=RunTrigger.MANUAL,
        idempotency_key=idempotency_key(job.id, manual_slot_key(run)),
        log=structlog.get_logger("test"),
        db=None,  # type: ignore[arg-type]  # the handler never touches the database
        settings=settings,
    )


async def test_a_job_cannot_queue_runs_through_the_api(
    two_apis: tuple[ApiProcess, ApiProcess], settings: Settings, tmp_path: Path
) -> None:
    api = two_apis[0]
    token = auth(settings, "alice")
    async with httpx.AsyncClient(timeout=30) as client:
        target = await client.post(f"{api.url}/jobs", json=job_body("target"), headers=token)
        assert target.status_code == 201, target.text
        target_id = target.json()["id"]
        # The worker knows this API under another address (as a second service would be):
        # its own-address guard does not apply, so only the run headers can stop the chain.
        worker_settings = Settings.model_validate(
            {
                **settings.model_dump(),
                "http_base_url": f"http://127.0.0.1:{api.port}",
                "api_port": 1,
            }
        )
        payload = {
            "url": f"/api/cron/jobs/{target_id}/run-now",
            "headers": {"Authorization": token["Authorization"]},
        }
        ctx = _context(worker_settings, payload)
        with pytest.raises(HandlerError, match=r"^HTTP 409 Conflict from 127\.0\.0\.1") as error:
            await http_request.call(ctx, HttpRequestPayload.model_validate(payload))
        assert "sent by a running job" in str(error.value)
        runs = await client.get(f"{api.url}/jobs/{target_id}/runs", headers=token)
        assert runs.json()["items"] == []
        # The same call without the run headers (a client) is accepted: the guard is the headers.
        accepted = await client.post(f"{api.url}/jobs/{target_id}/run-now", headers=token)
        assert accepted.status_code == 202
