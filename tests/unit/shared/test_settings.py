"""Settings: defaults, parsing from CRON_* variables, and errors that name the variable."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.settings import (
    DEFAULT_SIGNING_SECRET,
    PLACEHOLDER_PREFIX,
    Settings,
    SettingsError,
    load_settings,
    parse_rate_limit,
)


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


@pytest.mark.parametrize("secret", ["x", "s" * 31])
def test_a_short_jwt_secret_is_refused(secret: str) -> None:
    with pytest.raises(SettingsError, match=r"CRON_JWT_SECRET: .*at least 32 characters"):
        load_settings({"CRON_JWT_SECRET": secret})
    assert load_settings({"CRON_JWT_SECRET": "s" * 32}).jwt_secret is not None


def test_an_empty_jwt_secret_means_unset() -> None:
    # Not an empty HS256 key: that would accept tokens anybody can sign.
    settings = load_settings({"CRON_JWT_SECRET": "", "CRON_JWT_PUBLIC_KEY": " "})
    assert settings.jwt_secret is None and settings.jwt_public_key is None


@pytest.mark.parametrize(
    "variable", ["CRON_JWT_SECRET", "CRON_HTTP_SIGNING_SECRET", "CRON_SMTP_PASSWORD"]
)
@pytest.mark.parametrize(
    "value",
    [
        "replace-with-the-auth-servers-hs256-secret",
        "Replace-With-a-long-random-signing-secret-0123456789",
        PLACEHOLDER_PREFIX,
    ],
)
def test_a_placeholder_from_the_example_file_is_refused(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable}: .*placeholder"):
        load_settings({variable: value})


def test_the_signing_secret_keeps_its_local_default() -> None:
    secret = load_settings({}).http_signing_secret.get_secret_value()
    assert secret == DEFAULT_SIGNING_SECRET == "change-me"


def _public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def test_a_one_line_public_key_with_literal_backslash_n_is_read_as_pem() -> None:
    pem = _public_pem()
    one_line = pem.strip().replace("\n", "\\n")
    assert "\n" not in one_line
    settings = load_settings({"CRON_JWT_PUBLIC_KEY": one_line})
    assert settings.jwt_public_key == pem.strip()
    assert load_settings({"CRON_JWT_PUBLIC_KEY": pem}).jwt_public_key == pem.strip()


def test_an_unusable_public_key_is_refused_at_load_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"CRON_JWT_PUBLIC_KEY: .*not a PEM public key"):
        load_settings({"CRON_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\\nnope"})
