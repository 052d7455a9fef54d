"""`/job-types` and `/preview`: what a client needs to build its forms."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

from litestar import Controller, get, post
from litestar.params import JSONBody

from api.dependencies import CallerDep, ServicesDep
from api.errors import field_error, invalid
from api.guards import requires_caller
from api.openapi import problems
from api.schemas.catalog import (
    FireTime,
    JobTypeList,
    JobTypeOut,
    PreviewIn,
    PreviewOut,
    TemplateOut,
)
from api.schemas.common import FieldError
from shared.registry import JobType
from shared.schedule import parse_timezone
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
        """The next `count` fire times, or the same cron / timezone errors a save would give."""
        errors: list[FieldError] = []
        now = datetime.now(UTC)
        schedule = services.validator.check_schedule(data.cron, data.timezone, caller, errors, now)
        if schedule is None or errors:
            raise invalid(errors)
        zone = parse_timezone(schedule.timezone)
        try:
            times = schedule.next_times(now, data.count)
        except ValueError as error:  # runs past the supported calendar
            raise invalid([field_error("cron", str(error))]) from None
        return PreviewOut(
            cron=schedule.cron,
            timezone=schedule.timezone,
            fire_times=[FireTime(utc=time, local=time.astimezone(zone)) for time in times],
        )


def _templates(job_type: JobType, settings: Settings) -> list[TemplateOut] | None:
    if job_type.variants is None:
        return None
    schemas = job_type.variants(settings)
    return [TemplateOut(name=name, params_schema=schema) for name, schema in schemas.items()]
