"""The `monitoring` profile of docker-compose.yml, checked without a Docker engine: Prometheus
scrapes the API and every worker replica with the alert rules loaded, Grafana is provisioned
with the dashboard, and the metric ports stay inside the compose network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.support import ROOT

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "cronjobs.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


def _yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml(ROOT / "docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of the bind mounts (`./x:/y[:ro]`)."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container = str(volume).split(":")[:2]
        mounts[container] = host
    return mounts


def test_prometheus_and_grafana_start_only_with_the_monitoring_profile(
    services: dict[str, Any],
) -> None:
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    for name in ("mongo", "db-init", "api", "worker"):
        assert "profiles" not in services[name]
    assert services["prometheus"]["image"].startswith("prom/prometheus:v")
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_their_ports_are_published_on_the_host_loopback_only(services: dict[str, Any]) -> None:
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    # The app's metric ports are not published at all.
    assert services["api"]["ports"] == ["8000:8000"]
    assert "ports" not in services["worker"]


def test_prometheus_gets_its_config_and_the_alert_rules(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    mounts = _mounts(prometheus)
    config_in_container = next(
        flag.split("=", 1)[1] for flag in prometheus["command"] if flag.startswith("--config.file=")
    )
    assert (ROOT / mounts[config_in_container]).resolve() == PROMETHEUS_CONFIG
    rules = _yaml(PROMETHEUS_CONFIG)["rule_files"]
    assert rules == ["/etc/prometheus/alerts.yml"]
    assert (ROOT / mounts[rules[0]]).resolve() == ROOT / "deploy" / "prometheus" / "alerts.yml"


def test_prometheus_scrapes_the_api_and_every_worker_replica(services: dict[str, Any]) -> None:
    environment = services["api"]["environment"]
    assert services["worker"]["environment"] == environment  # one anchor for both
    assert environment["CRON_METRICS_HOST"] == "0.0.0.0"
    jobs = {job["job_name"]: job for job in _yaml(PROMETHEUS_CONFIG)["scrape_configs"]}
    assert set(jobs) == {"cronjobs-api", "cronjobs-worker"}
    api_targets = jobs["cronjobs-api"]["static_configs"][0]["targets"]
    assert api_targets == [f"api:{environment['CRON_API_METRICS_PORT']}"]
    # One A record per replica of the `worker` service: every replica, whatever --scale says.
    (discovery,) = jobs["cronjobs-worker"]["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and discovery["type"] == "A"
    assert str(discovery["port"]) == environment["CRON_METRICS_PORT"]


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make system-deps` (Debian package prometheus)"
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(
    services: dict[str, Any],
) -> None:
    mounts = _mounts(services["grafana"])
    assert (ROOT / mounts["/etc/grafana/provisioning"]).resolve() == PROVISIONING
    datasource = _yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = _yaml(PROVISIONING / "dashboards" / "cronjobs.yml")["providers"][0]
    folder = provider["options"]["path"]
    assert (ROOT / mounts[f"{folder}/cronjobs.json"]).resolve() == DASHBOARD
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    templating = dashboard["templating"]["list"][0]
    assert templating["current"]["value"] == datasource["uid"]


def test_the_dashboard_shows_what_an_operator_needs() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "cronjobs"
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in (
        "Throughput by outcome",
        "Fire lag (scheduled runs)",
        "Due backlog and pending queue",
        "In flight and free capacity",
        "Workers",
        "API latency by route",
    ):
        assert wanted in titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\b(cronjobs_[a-z_]+|up)\b", target["expr"]))
            assert names, target["expr"]
