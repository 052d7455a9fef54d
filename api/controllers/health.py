"""`/healthz` (process up) and `/readyz` (database reachable), without auth."""

from __future__ import annotations

from http import HTTPStatus

import pymongo
import structlog
from litestar import Controller, Response, get
from litestar.openapi import ResponseSpec
from pymongo.errors import PyMongoError

from api.dependencies import ServicesDep
from api.schemas.catalog import Health

log = structlog.get_logger(__name__)

# Readiness probes are frequent and impatient: answer within this even if the database hangs.
READY_TIMEOUT_SECONDS = 2.0


class HealthController(Controller):
    """Probes for orchestrators; excluded from auth and rate limiting."""

    path = "/"
    tags = ["health"]
    security = [{}]
    opt = {"exclude_from_auth": True}

    @get("/healthz", summary="Liveness")
    async def healthz(self) -> Health:
        """200 while the process serves requests."""
        return Health(status="ok")

    @get(
        "/readyz",
        summary="Readiness",
        responses={
            503: ResponseSpec(Health, description="Database unreachable.", generate_examples=False)
        },
    )
    async def readyz(self, services: ServicesDep) -> Response[Health]:
        """200 when the database answers a ping, else 503."""
        timeout = min(READY_TIMEOUT_SECONDS, services.settings.mongodb_timeout_ms / 1000)
        try:
            # The driver's own deadline (not task cancellation, which can strand a socket).
            with pymongo.timeout(timeout):
                await services.db.command("ping")
        except PyMongoError as error:
            log.warning("api.not_ready", error=type(error).__name__)
            return Response(
                Health(status="unavailable"), status_code=HTTPStatus.SERVICE_UNAVAILABLE
            )
        return Response(Health(status="ok"))
