"""`cronjobs-api`: serve the API with uvicorn on CRON_API_HOST:CRON_API_PORT."""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
from collections.abc import Sequence

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


def main(argv: Sequence[str] | None = None) -> int:
    """Check the configuration and the port, then serve; exit status 2 with one line if not."""
    argparse.ArgumentParser(
        prog="cronjobs-api",
        description="Serve the cronjobs management API on CRON_API_HOST:CRON_API_PORT "
        "(CRON_API_WORKERS processes). Configuration comes from CRON_* environment variables; "
        "see README.md, Configuration.",
    ).parse_args(argv)
    try:
        settings = load_settings()
        TokenVerifier(settings)  # fail fast when no usable key is configured
    except SettingsError as error:
        sys.stderr.write(f"cronjobs-api: {error}\n")
        return 2
    problem = port_problem(settings.api_host, settings.api_port)
    if problem:
        sys.stderr.write(f"cronjobs-api: {problem}\n")
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


def port_problem(host: str, port: int) -> str | None:
    """Why the API could not listen on host:port (one line naming CRON_API_PORT), or None.

    A probe bind with SO_REUSEADDR, as uvicorn binds: it fails only while something listens.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use; stop what listens there or set "
                "CRON_API_PORT to a free port"
            )
        reason = error.strerror or str(error)
        return f"cannot listen on {host}:{port} ({reason}); check CRON_API_HOST and CRON_API_PORT"
    return None


def _exit_cleanly(number: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
