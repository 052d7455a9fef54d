"""`cronjobs-api` refuses to start on bad configuration with one clear line."""

from __future__ import annotations

import pytest

from api.__main__ import main

ENV_PREFIXES = ("CRON_",)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    return monkeypatch


def test_missing_key_exits_with_one_line(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("cronjobs-api: ")
    assert "CRON_JWT_SECRET" in err


def test_invalid_setting_is_named(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environment.setenv("CRON_JWT_SECRET", "s" * 32)
    clean_environment.setenv("CRON_RATE_LIMIT", "lots")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "CRON_RATE_LIMIT" in err
    assert err.count("\n") == 1
