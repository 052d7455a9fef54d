"""The signing secret: the start-up warning about the public `change-me` default."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from shared.job_types.http_signature import warn_if_default_secret
from shared.settings import load_settings


def test_the_default_secret_gives_one_warning_naming_the_variable() -> None:
    with capture_logs() as logs:
        assert warn_if_default_secret(load_settings({}), structlog.get_logger("worker")) is True
    [entry] = logs
    assert entry["log_level"] == "warning"
    assert entry["variable"] == "CRON_HTTP_SIGNING_SECRET"
    assert "change-me" in entry["hint"]


def test_an_own_secret_gives_no_warning() -> None:
    settings = load_settings({"CRON_HTTP_SIGNING_SECRET": "an-operator-chosen-signing-secret"})
    with capture_logs() as logs:
        assert warn_if_default_secret(settings, structlog.get_logger("worker")) is False
    assert logs == []
