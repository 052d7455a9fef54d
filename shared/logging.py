"""structlog configuration: JSON lines (or console) on stderr, stdlib logs routed through it."""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog

from shared.settings import Settings


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at write time, not at configuration time.

    Loggers are cached on first use; a captured or replaced stderr (tests, daemon managers)
    must not leave them writing to a closed stream.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_CURRENT_STDERR = _CurrentStderr()


def configure_logging(settings: Settings, service: str) -> None:
    """Configure structlog once per process; every line carries `service`."""
    level = logging.getLevelNamesMapping()[settings.log_level]
    shared_processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CURRENT_STDERR)),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=max(level, logging.WARNING), stream=_CURRENT_STDERR, force=True)
