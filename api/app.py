"""The Litestar application factory."""

from __future__ import annotations

import structlog
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.plugins.pydantic import PydanticPlugin
from pymongo.errors import PyMongoError

from api.auth import BearerAuthMiddleware, TokenVerifier
from api.controllers.catalog import CatalogController
from api.controllers.dry_run import DryRunController
from api.controllers.health import HealthController
from api.controllers.history import HistoryController
from api.controllers.jobs import JobController
from api.controllers.run_requests import RunRequestController
from api.dashboard import DASHBOARD_AUTH_EXCLUDE, dashboard_plugins
from api.dependencies import DEPENDENCIES, STATE_KEY, Services, services_of
from api.errors import EXCEPTION_HANDLERS
from api.header_limit import HeaderSizeLimit
from api.metrics import METRICS_PATH, ApiMetrics
from api.openapi import BASE_PATH, SCHEMA_PATH, openapi_config
from api.rate_limit import STORE_NAME, rate_limit_config
from api.rate_limit_store import MongoRateLimitStore
from api.request import ApiRequest
from api.validation import JobValidator
from shared.db import create_client, ensure_indexes, get_database
from shared.registry import JobTypeRegistry, build_registry
from shared.settings import Settings

log = structlog.get_logger(__name__)

# Paths served without a token (and without rate limiting).
PUBLIC_PATHS = [f"^{SCHEMA_PATH}", f"^{BASE_PATH}/(healthz|readyz)$", f"^{METRICS_PATH}$"]


def create_app(settings: Settings, registry: JobTypeRegistry | None = None) -> Litestar:
    """The API under /api/cron for `settings` (its database, keys and limits).

    `registry` defaults to the built-in job types minus CRON_DISABLED_TYPES. The MongoDB client
    connects lazily on first use and is closed at shutdown.
    """
    registry = registry if registry is not None else build_registry(settings)
    verifier = TokenVerifier(settings)
    client = create_client(settings)
    services = Services(
        settings=settings,
        client=client,
        db=get_database(client, settings),
        registry=registry,
        validator=JobValidator(settings, registry),
    )
    metrics = ApiMetrics(settings)
    started, stopped = metrics.lifecycle()
    api = Router(
        path=BASE_PATH,
        route_handlers=[
            DryRunController,
            JobController,
            RunRequestController,
            HistoryController,
            CatalogController,
            HealthController,
        ],
    )
    return Litestar(
        route_handlers=[api, *metrics.route_handlers()],
        dependencies=DEPENDENCIES,
        middleware=[
            HeaderSizeLimit(),
            *metrics.middleware(),
            DefineMiddleware(
                BearerAuthMiddleware,
                verifier=verifier,
                exclude=[*PUBLIC_PATHS, DASHBOARD_AUTH_EXCLUDE],  # it has its own sign-in
            ),
            rate_limit_config(settings, PUBLIC_PATHS).middleware,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(registry),
        plugins=[PydanticPlugin(prefer_alias=True), *dashboard_plugins(services)],
        request_class=ApiRequest,
        request_max_body_size=settings.max_body_bytes,
        state=State({STATE_KEY: services}),
        stores={STORE_NAME: MongoRateLimitStore(services.db)},
        on_startup=[_ensure_indexes, *started],
        on_shutdown=[_close_client, *stopped],
        logging_config=None,
        debug=False,
    )


async def _ensure_indexes(app: Litestar) -> None:
    """Best effort: the unique name index backs 409; readyz reports an unreachable database."""
    services = services_of(app.state)
    try:
        await ensure_indexes(services.db, services.settings)
    except (PyMongoError, RuntimeError) as error:
        log.warning("api.indexes_not_ensured", error=str(error))
    log.info("api.started", db=services.settings.db_name, job_types=services.registry.names())


async def _close_client(app: Litestar) -> None:
    await services_of(app.state).client.close()
