"""The API's Prometheus metrics: Litestar's plugin (requests by route template and status) plus
job write counters, served at /metrics (outside /api/cron, no token) or on a separate port.

prometheus-client's process-wide registry holds them (the plugin registers there), so every
app built in one process shares the counters.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

import structlog
from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.middleware._internal.exceptions import ExceptionHandlerMiddleware
from litestar.plugins.prometheus import (
    PrometheusConfig,
    PrometheusController,
    PrometheusMiddleware,
)
from litestar.types import ASGIApp, ControllerRouterHandler
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    multiprocess,
    start_http_server,
)

from shared.settings import Settings

METRICS_PATH: Final = "/metrics"
PREFIX: Final = "cronjobs_api"
# prometheus-client's multiprocess mode: the one switch it offers is this variable, read when a
# process first imports it (Litestar's PrometheusController reads it too).
MULTIPROCESS_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"

log = structlog.get_logger(__name__)
disable_created_metrics()  # type: ignore[no-untyped-call]

JOBS_CREATED: Final = Counter(
    f"{PREFIX}_jobs_created", "Jobs created through the API, by job type.", ("type",)
)
JOBS_DELETED: Final = Counter(f"{PREFIX}_jobs_deleted", "Jobs deleted through the API.")
RUNS_QUEUED: Final = Counter(f"{PREFIX}_run_now", "Run-now requests queued (202).")


class StatusRecordingMiddleware(PrometheusMiddleware):
    """Litestar's Prometheus middleware, recording the status of error answers too.

    Exceptions (401 from the auth middleware, 404/409/422 from handlers, 503 ...) become
    responses only in Litestar's exception layer, outside every user middleware, so the plugin
    alone records them as 200 (litestar-org/litestar#4747, fixed after 2.25). Handling them one
    layer inside, with the same handlers, lets it see the real answer.
    """

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(ExceptionHandlerMiddleware(app=app, debug=None), config)


class MetricsController(PrometheusController):
    """GET /metrics in Prometheus' text format (not part of the client-facing OpenAPI)."""

    path = METRICS_PATH
    include_in_schema = False


class ApiMetrics:
    """Where the API's metrics go, as CRON_API_METRICS_PORT says (unset, 0 or a port)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.api_metrics_port
        self._server: WSGIServer | None = None

    @property
    def enabled(self) -> bool:
        """False when CRON_API_METRICS_PORT is 0."""
        return self.port != 0

    def middleware(self) -> list[DefineMiddleware]:
        """Request count and latency by route template and status code (outermost)."""
        if not self.enabled:
            return []
        config = PrometheusConfig(
            app_name="cronjobs-api",
            prefix=PREFIX,
            group_path=True,
            middleware_class=StatusRecordingMiddleware,
        )
        return [config.middleware]

    def route_handlers(self) -> Sequence[ControllerRouterHandler]:
        """GET /metrics on the API's own port (unless it is served separately or off)."""
        return [MetricsController] if self.port is None else []

    def lifecycle(self) -> tuple[list[Callable[[Litestar], Any]], list[Callable[[Litestar], Any]]]:
        """Start-up and shutdown hooks: a separate listener on CRON_METRICS_HOST:port."""
        if not self.port:
            return [], []
        return [self._serve], [self._close]

    def _serve(self, app: Litestar) -> None:
        host, port = self.settings.metrics_host, self.port
        assert port is not None
        try:
            self._server, _ = start_http_server(port, host, _exposed_registry())
        except OSError as error:
            log.warning("metrics.unavailable", host=host, port=port, error=str(error))
            return
        log.info("metrics.serving", host=host, port=port, path=METRICS_PATH)

    def _close(self, app: Litestar) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _exposed_registry() -> CollectorRegistry:
    """The process-wide registry, or every server process's metrics in multiprocess mode."""
    if MULTIPROCESS_VARIABLE not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@contextlib.contextmanager
def shared_across_processes(settings: Settings) -> Iterator[None]:
    """With several server processes (CRON_API_WORKERS > 1), make them count in one place.

    Each process otherwise keeps its own counters and a scrape sees whichever process answers,
    so counters would jump back and forth. Before uvicorn starts its processes this switches on
    prometheus-client's multiprocess mode with a private temporary directory (removed at exit);
    /metrics then sums every process. The operator's own PROMETHEUS_MULTIPROC_DIR is kept.
    """
    if settings.api_workers <= 1 or settings.api_metrics_port == 0:
        yield
        return
    if MULTIPROCESS_VARIABLE in os.environ:
        yield
        return
    directory = tempfile.mkdtemp(prefix=f"cronjobs-api-metrics-{os.getpid()}-")
    os.environ[MULTIPROCESS_VARIABLE] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)
