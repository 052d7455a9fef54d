"""`cronjobs-api`: serve the API with uvicorn on CRON_API_HOST:CRON_API_PORT."""

from __future__ import annotations

import signal
import sys

import uvicorn
from litestar import Litestar

from api.app import create_app
from api.auth import TokenVerifier
from api.metrics import shared_across_processes
from shared.logging import configure_logging
from shared.settings import SettingsError, load_settings

APP_FACTORY = "api.__main__:app_from_environment"


def app_from_environment() -> Litestar:
    """The app for the process environment (called in every server worker process)."""
    settings = load_settings()
    configure_logging(settings, "api")
    return create_app(settings)


def main() -> int:
    """Check the configuration, then serve; exit status 2 with one line on bad settings."""
    try:
        settings = load_settings()
        TokenVerifier(settings)  # fail fast when no usable key is configured
    except SettingsError as error:
        sys.stderr.write(f"cronjobs-api: {error}\n")
        return 2
    configure_logging(settings, "api")
    # uvicorn re-raises the stop signal once it has shut down gracefully; with these handlers
    # in place (restored by uvicorn before it re-raises) the process exits 0, not "killed".
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _exit_cleanly)
    with shared_across_processes(settings):
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.api_host,
            port=settings.api_port,
            workers=settings.api_workers,
            log_config=None,
            access_log=False,
            server_header=False,
            lifespan="on",
        )
    return 0


def _exit_cleanly(number: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
