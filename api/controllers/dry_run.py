"""`POST /jobs/dry-run`: a job body validated as a create would, previewed, nothing saved."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated

import structlog
from litestar import Controller, post
from litestar.params import JSONBody, QueryParameter

from api.dependencies import CallerDep, ServicesDep
from api.guards import creating_owner, requires_caller
from api.openapi import problems
from api.schedule_preview import schedule_preview
from api.schemas.catalog import PREVIEW_MAX_COUNT
from api.schemas.dry_run import DryRunOut
from api.schemas.jobs import JobCreate
from api.validation import spec_from_body
from shared import jobs_repo
from shared.interval import anchor_of
from shared.run_identity import dry_run_identity

log = structlog.get_logger(__name__)


class DryRunController(Controller):
    """What a job would do, before it exists."""

    path = "/jobs/dry-run"
    tags = ["jobs"]
    guards = [requires_caller]

    @post(
        "/",
        status_code=HTTPStatus.OK,
        summary="Validate a job and preview its runs without saving it",
        responses=problems(400, 403, 409, 413, 422),
    )
    async def dry_run(
        self,
        data: JSONBody[JobCreate],
        caller: CallerDep,
        services: ServicesDep,
        count: Annotated[
            int, QueryParameter(ge=1, le=PREVIEW_MAX_COUNT, description="How many fire times.")
        ] = 10,
    ) -> DryRunOut:
        """200 with the next fire times and the first run's email or HTTP request as the
        handler would render and sign it. Every answer a create would give is given the same
        way (403, 409 for a duplicate name or a full quota, 422 naming each field), but nothing
        is saved, sent, resolved or connected to."""
        owner_id = creating_owner(data.owner_id, caller)
        spec = services.validator.validate(
            spec_from_body(data, services.settings, by_admin=caller.is_admin), caller
        )
        quota = None if caller.is_admin else services.settings.max_jobs_per_owner
        await jobs_repo.check_can_create(services.db, spec, owner_id=owner_id, max_jobs=quota)
        now = datetime.now(UTC)
        anchor = (spec.start_at or anchor_of(now)) if spec.every is not None else None
        preview = schedule_preview(
            jobs_repo.spec_schedule(spec, anchor),
            spec.timezone,
            now,
            count,
            start_at=spec.start_at,
            end_at=spec.end_at,
            max_runs=spec.max_runs,
            # A jittered start needs the job's id, which only a save assigns.
            starts_at=lambda slot: slot if spec.options.jitter_seconds == 0 else None,
        )
        first = preview.fire_times[0].utc if preview.fire_times else now
        identity = dry_run_identity(spec.name, first, spec.timezone)
        job_type = services.registry.get(spec.type)
        payload = job_type.payload_model.model_validate(spec.payload)
        run = job_type.describe_run(identity, payload, services.settings)
        log.info("api.dry_run", owner_id=owner_id, type=spec.type, caller=caller.sub)
        return DryRunOut(**preview.model_dump(), type=spec.type, run=run)
