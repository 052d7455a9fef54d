"""Settings: defaults, parsing from CRON_* variables, and errors that name the variable."""

from __future__ import annotations

import pytest

from shared.settings import Settings, SettingsError, load_settings, parse_rate_limit


def test_defaults_are_safe_for_local_use() -> None:
    settings = load_settings({})
    assert settings.api_host == "127.0.0.1"
    assert settings.api_port == 8000
    assert settings.db_name == "cronjobs"
    assert settings.max_jobs_per_owner == 100
    assert settings.min_interval_seconds == 60
    assert settings.http_allow_private_networks is False
    assert settings.disabled_types == []


def test_values_come_from_cron_prefixed_variables() -> None:
    settings = load_settings(
        {
            "CRON_API_PORT": "9001",
            "CRON_DISABLED_TYPES": "sendEmail, httpRequest",
            "CRON_HTTP_ALLOWED_HOSTS": "api.example.com,*.example.org",
            "CRON_USE_CHANGE_STREAMS": "false",
            "OTHER_API_PORT": "1",
        }
    )
    assert settings.api_port == 9001
    assert settings.disabled_types == ["sendEmail", "httpRequest"]
    assert settings.http_allowed_hosts == ["api.example.com", "*.example.org"]
    assert settings.use_change_streams is False


def test_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRON_DB_NAME", "from_env")
    assert load_settings().db_name == "from_env"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CRON_API_PORT", "70000"),
        ("CRON_API_PORT", "eighty"),
        ("CRON_RATE_LIMIT", "lots"),
        ("CRON_RATE_LIMIT", "10/fortnight"),
        ("CRON_LOG_LEVEL", "LOUD"),
        ("CRON_SMTP_SECURITY", "ssl3"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({variable: value})
    assert variable in str(error.value)


def test_inconsistent_lease_and_heartbeat_is_rejected() -> None:
    with pytest.raises(SettingsError, match="heartbeat_seconds must be shorter"):
        load_settings({"CRON_LEASE_SECONDS": "5", "CRON_HEARTBEAT_SECONDS": "5"})


def test_rate_limit_parsing() -> None:
    assert parse_rate_limit("60/minute") == ("minute", 60)
    assert parse_rate_limit("5/second") == ("second", 5)
    with pytest.raises(ValueError, match="N/minute"):
        parse_rate_limit("0/minute")


def test_settings_are_immutable() -> None:
    settings = load_settings({})
    with pytest.raises(ValueError, match="frozen"):
        settings.api_port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)
