"""docker-compose.yml, checked without a Docker engine: services, health checks, commands."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared.settings import Settings
from tests.unit.deploy.support import DEFAULT_GRACE_SECONDS, ROOT, console_scripts, seconds

APP_SERVICES = ("db-init", "api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with (ROOT / "docker-compose.yml").open(encoding="utf-8") as file:
        document = yaml.safe_load(file)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def _test_command(healthcheck: dict[str, Any]) -> list[str]:
    test = healthcheck["test"]
    assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, test
    return [str(part) for part in test[1:]]


def test_services_are_mongo_init_api_and_worker(services: dict[str, Any]) -> None:
    # Services in a profile (monitoring) start only on request: test_compose_monitoring.py.
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"mongo", *APP_SERVICES}


def test_mongo_is_an_official_7_or_8_image_started_as_a_replica_set(
    services: dict[str, Any], compose: dict[str, Any]
) -> None:
    mongo = services["mongo"]
    image, _, tag = mongo["image"].partition(":")
    assert image == "mongo" and tag.split(".")[0] in {"7", "8"}
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    assert any(volume.endswith(":/data/db") for volume in mongo["volumes"])
    data_volume = next(v for v in mongo["volumes"] if v.endswith(":/data/db")).split(":")[0]
    assert data_volume in compose["volumes"]


def test_mongo_healthcheck_initiates_the_replica_set_idempotently(
    services: dict[str, Any],
) -> None:
    command = _test_command(services["mongo"]["healthcheck"])
    assert command[0] == "mongosh"
    script = command[-1]
    # rs.initiate only when rs.status() fails (not yet initiated), then: healthy once primary.
    assert script.index("rs.status()") < script.index("catch") < script.index("rs.initiate(")
    assert "_id: 'rs0'" in script and "host: 'mongo:27017'" in script
    assert "isWritablePrimary" in script


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_one_image_and_run_a_console_script(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service["build"] == "." and service["image"] == services["api"]["image"]
    assert service["command"][0] in console_scripts()
    assert service["env_file"] == ".env"
    assert service["depends_on"]["mongo"]["condition"] == "service_healthy"


def test_app_environment_names_real_settings(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        for key in environment:
            assert key.startswith("CRON_") and key[5:].lower() in Settings.model_fields, key
        assert "replicaSet=rs0" in environment["CRON_MONGODB_URI"]
        assert "mongo:27017" in environment["CRON_MONGODB_URI"]


def test_indexes_are_created_before_api_and_workers_start(services: dict[str, Any]) -> None:
    assert services["db-init"]["command"] == ["cronjobs", "db", "init"]
    assert services["db-init"]["restart"] == "no"
    for name in ("api", "worker"):
        condition = services[name]["depends_on"]["db-init"]["condition"]
        assert condition == "service_completed_successfully"


def test_api_publishes_its_port_and_checks_readyz(services: dict[str, Any]) -> None:
    api = services["api"]
    assert api["command"] == ["cronjobs-api"]
    assert api["ports"] == ["8000:8000"]
    assert api["environment"]["CRON_API_PORT"] == "8000"
    probe = " ".join(_test_command(api["healthcheck"]))
    assert "http://127.0.0.1:8000/api/cron/readyz" in probe


def test_two_workers_with_the_check_command_and_a_long_enough_stop(
    services: dict[str, Any],
) -> None:
    worker = services["worker"]
    assert worker["command"] == ["cronjobs-worker"]
    assert worker["deploy"]["replicas"] == 2
    assert _test_command(worker["healthcheck"]) == ["cronjobs-worker", "--check"]
    assert seconds(worker["stop_grace_period"]) > DEFAULT_GRACE_SECONDS
    # Each replica must keep its own (host) name: a shared name breaks heartbeats and tokens.
    assert "CRON_WORKER_NAME" not in worker["environment"]
    assert "container_name" not in worker and "hostname" not in worker


def test_the_smtp_relay_is_required_from_the_operator(services: dict[str, Any]) -> None:
    # Its default names 127.0.0.1, which inside a container is the container itself.
    for name in APP_SERVICES:
        value = str(services[name]["environment"]["CRON_SMTP_HOST"])
        assert value.startswith("${CRON_SMTP_HOST:?") and value.endswith("}"), (name, value)
        assert "127.0.0.1" not in value and "localhost" not in value


def test_the_backend_is_optional_and_never_the_api_itself(services: dict[str, Any]) -> None:
    # Empty (the default) refuses relative job URLs; nothing defaults to the API's address.
    for name in APP_SERVICES:
        assert services[name]["environment"]["CRON_HTTP_BASE_URL"] == "${CRON_HTTP_BASE_URL:-}"
