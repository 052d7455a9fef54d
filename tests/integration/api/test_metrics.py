"""The API's /metrics: no token, no rate limit, error answers with their status, job counters,
and the settings that move it to its own port or switch it off."""

from __future__ import annotations

import socket
from typing import Any

import httpx
from bson import ObjectId
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from api.app import create_app
from tests.integration.api.conftest import ApiFactory
from tests.integration.api.helpers import Api, echo_job

REQUESTS = "cronjobs_api_requests_total"


def sample(name: str, **labels: str) -> float:
    """The current value of a series in the process-wide registry (0 if absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests(method: str, path: str, status: int) -> float:
    labels = {"method": method, "path": path, "status_code": str(status)}
    return sample(REQUESTS, app_name="cronjobs-api", **labels)


async def test_metrics_need_no_token_and_are_not_in_the_openapi_document(api: Api) -> None:
    response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for family in ("cronjobs_api_jobs_created_total", "cronjobs_api_run_now_total"):
        assert family in response.text
    schema = await api.http.get("/api/cron/schema/openapi.json")
    assert "/metrics" not in schema.json()["paths"]


async def test_error_answers_are_counted_with_their_status(api: Api) -> None:
    before = {
        "401": requests("GET", "/api/cron/jobs", 401),
        "404": requests("GET", "/api/cron/jobs/{job_id}", 404),
        "200": requests("GET", "/api/cron/jobs", 200),
    }
    assert (await api.http.get("/api/cron/jobs")).status_code == 401
    assert (await api.request("GET", f"/jobs/{ObjectId()}", "alice")).status_code == 404
    assert (await api.request("GET", "/jobs", "alice")).status_code == 200
    assert requests("GET", "/api/cron/jobs", 401) == before["401"] + 1
    assert requests("GET", "/api/cron/jobs/{job_id}", 404) == before["404"] + 1
    assert requests("GET", "/api/cron/jobs", 200) == before["200"] + 1


async def test_job_writes_are_counted(api: Api) -> None:
    created = sample("cronjobs_api_jobs_created_total", type="echo")
    deleted = sample("cronjobs_api_jobs_deleted_total")
    queued = sample("cronjobs_api_run_now_total")
    job_id = (await api.create(echo_job()))["id"]
    assert (await api.request("POST", f"/jobs/{job_id}/run-now")).status_code == 202
    assert (await api.request("DELETE", f"/jobs/{job_id}")).status_code == 204
    assert sample("cronjobs_api_jobs_created_total", type="echo") == created + 1
    assert sample("cronjobs_api_run_now_total") == queued + 1
    assert sample("cronjobs_api_jobs_deleted_total") == deleted + 1


async def test_metrics_are_not_rate_limited(make_api: ApiFactory) -> None:
    limited: Api = await make_api(rate_limit="2/minute")
    statuses = [(await limited.http.get("/metrics")).status_code for _ in range(5)]
    assert statuses == [200] * 5
    jobs = [(await limited.request("GET", "/jobs", "bob")).status_code for _ in range(3)]
    assert jobs[-1] == 429  # while the management endpoints are


async def test_port_zero_switches_api_metrics_off(make_api: ApiFactory) -> None:
    quiet: Api = await make_api(api_metrics_port=0)
    before = requests("GET", "/api/cron/healthz", 200)
    assert (await quiet.http.get("/metrics")).status_code == 404
    assert (await quiet.http.get("/api/cron/healthz")).status_code == 200
    assert requests("GET", "/api/cron/healthz", 200) == before


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_separate_metrics_port(api_settings: Any) -> None:
    port = _free_port()
    settings = api_settings.model_copy(update={"api_metrics_port": port})
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/api/cron/healthz")).status_code == 200
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200
        assert 'path="/api/cron/healthz"' in response.text
    async with httpx.AsyncClient() as http:
        try:
            await http.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        except httpx.ConnectError:
            pass  # closed at shutdown
        else:
            raise AssertionError("the metrics listener outlived the app")
