"""`/job-types` and `/preview`: what a client needs to build its forms."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

from litestar import Controller, get, post
from litestar.params import JSONBody

from api.bounds_rules import check_bounds
from api.dependencies import CallerDep, ServicesDep
from api.errors import field_error, invalid
from api.guards import requires_caller
from api.openapi import problems
from api.schedule_preview import schedule_preview
from api.schemas.catalog import (
    JobTypeList,
    JobTypeOut,
    PreviewIn,
    PreviewOut,
    TemplateOut,
)
from api.schemas.common import FieldError
from api.validation import jitter_errors
from shared.jitter import jittered_start
from shared.registry import JobType
from shared.settings import Settings


class CatalogController(Controller):
    """Job types and schedule preview."""

    path = "/"
    tags = ["catalog"]
    guards = [requires_caller]

    @get("/job-types", summary="Whitelisted job types", responses=problems())
    async def job_types(self, services: ServicesDep) -> JobTypeList:
        """Each enabled type: description, admin-only flag, payload JSON Schema."""
        return JobTypeList(
            items=[
                JobTypeOut(
                    name=job_type.name,
                    description=job_type.description,
                    admin_only=job_type.admin_only,
                    payload_schema=job_type.json_schema(),
                    templates=_templates(job_type, services.settings),
                )
                for job_type in sorted(services.registry, key=lambda t: t.name)
            ]
        )

    @post(
        "/preview",
        status_code=HTTPStatus.OK,
        summary="Next fire times of a schedule",
        responses=problems(400, 413, 422),
    )
    async def preview(
        self, data: JSONBody[PreviewIn], caller: CallerDep, services: ServicesDep
    ) -> PreviewOut:
        """The next `count` fire times, or the same schedule / timezone errors a save would give.

        `every` previews an interval on `anchorAt` (default `startAt`, else now, as a job
        created now); `startAt`, `endAt` and `maxRuns` cut the fire times as they would a job's.
        """
        errors: list[FieldError] = []
        now = datetime.now(UTC)
        if data.anchor_at is not None and data.every is None:
            errors.append(field_error("anchorAt", "applies to `every` only"))
        schedule = services.validator.check_schedule(
            data.cron,
            data.timezone,
            caller,
            errors,
            now,
            every=data.every,
            anchor_at=data.anchor_at or data.start_at,
            run_at=data.run_at,
        )
        errors.extend(check_bounds(data, schedule, None, now))
        if schedule is not None:
            errors.extend(jitter_errors(data.jitter_seconds, schedule, now))
        if schedule is None or errors:
            raise invalid(errors)
        return schedule_preview(
            schedule,
            data.timezone,
            now,
            data.count,
            start_at=data.start_at,
            end_at=data.end_at,
            max_runs=data.max_runs,
            starts_at=lambda slot: _starts_at(data, slot),
        )


def _starts_at(data: PreviewIn, slot: datetime) -> datetime | None:
    """The slot's jittered start, if it can be known (the offset needs the job's id)."""
    if data.jitter_seconds == 0:
        return slot
    if data.job_id is None:
        return None
    return jittered_start(data.job_id, slot, data.jitter_seconds)


def _templates(job_type: JobType, settings: Settings) -> list[TemplateOut] | None:
    if job_type.variants is None:
        return None
    schemas = job_type.variants(settings)
    return [TemplateOut(name=name, params_schema=schema) for name, schema in schemas.items()]
