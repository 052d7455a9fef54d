"""One settings object for the API and the worker, read from `CRON_*` environment variables."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Annotated, Any, Literal, cast

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "CRON_"
# Every placeholder value in .env.example starts with this: a secret that still does was
# copied without being set, and the file is public.
PLACEHOLDER_PREFIX = "replace-with-"
# HS256 keys shorter than the 256-bit MAC can be brute-forced offline from one token.
MIN_JWT_SECRET_LENGTH = 32
# The signing secret's default: fine on a laptop, a warning anywhere else.
DEFAULT_SIGNING_SECRET = "change-me"

CommaList = Annotated[list[str], NoDecode]


class SettingsError(ValueError):
    """A `CRON_*` variable holds an unusable value; the message names the variable."""


class Settings(BaseSettings):
    """Every tunable of the service; field `x_y` is read from `CRON_X_Y`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True
    )

    # Database
    mongodb_uri: str = Field(
        "mongodb://127.0.0.1:27017/?directConnection=true", description="MongoDB connection string."
    )
    db_name: str = Field("cronjobs", min_length=1, max_length=60, description="Database name.")
    mongodb_timeout_ms: int = Field(
        5000, ge=100, le=120_000, description="Server selection / connect timeout in milliseconds."
    )

    # API
    api_host: str = Field("127.0.0.1", description="Address the API binds to.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port the API binds to.")
    api_workers: int = Field(1, ge=1, le=64, description="API server processes.")
    public_base_url: str = Field(
        "",
        description="Externally visible base URL (Location headers; jobs may not call it); "
        "empty: relative Location.",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description="HS256 shared secret of the auth server, at least 32 characters (use this "
        "or the public key).",
    )
    jwt_public_key: str | None = Field(
        None, description="PEM public key for RS256/ES256 tokens (use this or the secret)."
    )
    jwt_issuer: str | None = Field(None, description="Required `iss` claim, if set.")
    jwt_audience: str | None = Field(None, description="Required `aud` claim, if set.")
    jwt_leeway_seconds: int = Field(30, ge=0, le=300, description="Clock skew allowed on exp/nbf.")
    max_jobs_per_owner: int = Field(100, ge=1, description="Job quota per non-admin owner.")
    min_interval_seconds: int = Field(
        60, ge=1, description="Shortest allowed gap between fire times for non-admins."
    )
    rate_limit: str = Field(
        "60/minute", description="Requests per owner on management endpoints: N/second|minute|hour."
    )
    max_body_bytes: int = Field(65_536, ge=1024, description="Largest accepted request body.")
    max_payload_depth: int = Field(8, ge=2, le=64, description="Deepest nesting in a job payload.")

    # Operator dashboard (/dashboard)
    dashboard_enabled: bool = Field(True, description="Serve the admin dashboard at /dashboard.")
    dashboard_session_secret: SecretStr | None = Field(
        None,
        description="Key signing dashboard session cookies (32+ characters); unset: derived "
        "from CRON_JWT_SECRET, else random per process.",
    )
    dashboard_session_minutes: int = Field(
        60, ge=1, le=24 * 60, description="Dashboard sign-in lifetime (never past the token's)."
    )

    # Worker
    worker_name: str = Field(
        default_factory=socket.gethostname,
        description="Stable worker name (defaults to the host name); used by --check and tokens.",
    )
    worker_concurrency: int = Field(32, ge=1, le=10_000, description="Handlers in flight.")
    claim_batch_size: int = Field(
        1000,
        ge=1,
        le=5000,
        description="Due jobs read per query (a herd is worked off in such batches).",
    )
    max_running_per_owner: int = Field(
        0,
        ge=0,
        le=100_000,
        description="Runs of one owner in flight across all workers (0: no cap); runs over it "
        "wait in the queue.",
    )
    lease_seconds: float = Field(30, gt=0, description="Run lease length.")
    heartbeat_seconds: float = Field(
        5, gt=0, description="Lease renewal / heartbeat interval; 3 missed beats: worker dead."
    )
    use_change_streams: bool = Field(True, description="Watch for changes (else only poll).")
    poll_interval_seconds: float = Field(5, gt=0, description="Polling interval without streams.")
    shutdown_grace_seconds: float = Field(
        25, ge=0, description="How long running handlers may finish after SIGTERM."
    )
    misfire_threshold_seconds: float = Field(
        60, ge=0, description="A slot later than this is a misfire (misfire policy applies)."
    )
    max_missed_records: int = Field(
        100, ge=1, description="Missed slots recorded one by one before they are summarised."
    )
    default_timeout_seconds: int = Field(60, ge=1, description="Handler timeout if a job has none.")
    max_timeout_seconds: int = Field(3600, ge=1, description="Largest per-job handler timeout.")
    worker_stale_seconds: float = Field(
        60, gt=0, description="`cronjobs-worker --check` fails if not seen for this long."
    )
    run_retention_days: int = Field(30, ge=1, le=3650, description="Run history kept (TTL).")
    notify_min_interval_seconds: int = Field(
        3600,
        ge=0,
        le=7 * 86_400,
        description="At most one failure notice per job this often; later failures are counted "
        "into the next notice.",
    )
    default_pause_after_failures: int = Field(
        0,
        ge=0,
        le=100,
        description="`pauseAfterFailures` of jobs created without one; 0: never auto-pause.",
    )

    # Job types
    disabled_types: CommaList = Field(
        default_factory=list, description="Comma-separated job types to switch off."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server host.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    smtp_username: str | None = Field(None, description="SMTP auth user.")
    smtp_password: SecretStr | None = Field(None, description="SMTP auth password.")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "none", description="Transport security: none, starttls or tls (implicit)."
    )
    smtp_from: str = Field("cronjobs@localhost", description="Sender address.")
    smtp_timeout_seconds: float = Field(20, gt=0, description="SMTP timeout.")
    templates_dir: str | None = Field(None, description="Extra email templates folder.")
    sessions_collection: str = Field("sessions", description="Collection purgeSessions cleans.")
    sessions_last_seen_field: str = Field("lastSeenAt", description="Its last-activity field.")
    purge_batch_size: int = Field(1000, ge=1, le=100_000, description="Deletes per batch.")
    http_base_url: str = Field(
        "",
        description="Your backend: base for relative httpRequest URLs (trusted); empty: "
        "relative URLs are refused. Never the API's own address.",
    )
    http_allowed_hosts: CommaList = Field(
        default_factory=list, description="Hosts absolute httpRequest URLs may target."
    )
    http_admin_any_host: bool = Field(
        False, description="Admins' jobs may call hosts outside the allow-list."
    )
    http_allow_private_networks: bool = Field(
        False, description="Allow loopback/private/link-local targets after DNS (tests only)."
    )
    http_signing_secret: SecretStr = Field(
        SecretStr(DEFAULT_SIGNING_SECRET), description="HMAC-SHA256 key for X-Cron-Signature."
    )
    http_max_response_bytes: int = Field(65_536, ge=1024, description="Response bytes read.")

    # Metrics (Prometheus)
    metrics_host: str = Field(
        "127.0.0.1", description="Address the worker's /metrics (and a separate API one) binds to."
    )
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="Worker /metrics port; 0 switches worker metrics off."
    )
    api_metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="API metrics: unset, /metrics on the API's port; 0, off; a port, only there.",
    )

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Level.")
    log_json: bool = Field(True, description="JSON log lines (false: console format).")

    @field_validator("disabled_types", "http_allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("jwt_secret", "jwt_public_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `CRON_JWT_SECRET=` in an env file means "not this one", not an empty HS256 key.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_secret", "http_signing_secret", "smtp_password")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower().startswith(
            PLACEHOLDER_PREFIX
        ):
            raise ValueError(
                f"still the .env.example placeholder ({PLACEHOLDER_PREFIX}...); set your own value"
            )
        return value

    @field_validator("jwt_secret", "dashboard_session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_JWT_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_JWT_SECRET_LENGTH} characters; generate one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value

    @field_validator("jwt_public_key")
    @classmethod
    def _check_public_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Env files hold one line per variable: a PEM written with literal `\n` between its
        # lines (the documented form) becomes the multi-line PEM the key loader needs.
        pem = value.strip().replace("\\n", "\n")
        parse_public_key(pem)
        return pem

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds")
        return self

    @property
    def retention_seconds(self) -> int:
        """Run history retention in seconds."""
        return self.run_retention_days * 86_400


def parse_public_key(pem: str) -> RSAPublicKey | EllipticCurvePublicKey:
    """The RSA or EC public key in `pem`; ValueError (fit to show) otherwise."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as error:
        raise ValueError(f"not a PEM public key ({error})") from None
    if not isinstance(key, RSAPublicKey | EllipticCurvePublicKey):
        raise ValueError("must be an RSA or EC (P-256) public key")
    return key


RateUnit = Literal["second", "minute", "hour", "day"]
RATE_UNITS = ("second", "minute", "hour", "day")


def parse_rate_limit(value: str) -> tuple[RateUnit, int]:
    """Parse `N/unit` (e.g. `60/minute`) into (unit, N)."""
    count_text, _, unit = value.partition("/")
    if not count_text.strip().isdigit() or int(count_text) < 1:
        raise ValueError("expected N/second, N/minute, N/hour or N/day, e.g. 60/minute")
    unit = unit.strip()
    if unit not in RATE_UNITS:
        raise ValueError("expected N/second, N/minute, N/hour or N/day, e.g. 60/minute")
    return cast(RateUnit, unit), int(count_text)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings once (from `environ` if given, else the process environment).

    Raises SettingsError whose message names each offending `CRON_*` variable.
    """
    try:
        if environ is None:
            return Settings(**overrides)
        values = {
            key[len(ENV_PREFIX) :].lower(): value
            for key, value in environ.items()
            if key.startswith(ENV_PREFIX)
            and key[len(ENV_PREFIX) :].lower() in Settings.model_fields
        }
        values.update(overrides)
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = ENV_PREFIX + "_".join(str(part) for part in item["loc"][:1]).upper()
            if not item["loc"]:
                name = "settings"
            problems.append(f"{name}: {item['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
