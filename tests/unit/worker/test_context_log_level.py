"""A failed or timed-out attempt is logged at warning level; a success at info."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from shared.model import RunStatus
from tests.unit.worker.test_context import claim, executor  # noqa: F401 - the fixture
from worker.handlers.context import Executor


@pytest.fixture
def every_level() -> Iterator[None]:
    """Info lines pass whatever level an earlier test configured (restored afterwards)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.mark.usefixtures("every_level")
@pytest.mark.parametrize(
    ("handler", "status", "level"),
    [
        ("succeed", RunStatus.SUCCEEDED, "info"),
        ("refuse", RunStatus.FAILED, "warning"),
        ("hang", RunStatus.TIMEOUT, "warning"),
    ],
)
async def test_run_finished_level_follows_the_outcome(
    executor: Executor,  # noqa: F811
    handler: str,
    status: RunStatus,
    level: str,
) -> None:
    with capture_logs() as logs:
        outcome = await executor.execute(claim(handler))
    assert outcome.status is status
    finished = [line for line in logs if line["event"] == "run.finished"]
    assert [(line["log_level"], line["status"]) for line in finished] == [(level, status.value)]
