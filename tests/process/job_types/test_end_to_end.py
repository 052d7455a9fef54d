"""Each job type end to end: created through the API, run by a real `cronjobs-worker` process.

One worker, one SMTP server and one web server serve the whole module (each test < 30 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from bson import ObjectId
from litestar.testing import AsyncTestClient

from api.app import create_app
from shared.db import RUNS, Database, create_client
from shared.settings import Settings, load_settings
from shared.tokens import mint_token
from tests.integration.job_types.servers import SmtpSink, WebServer, free_port
from tests.support import TEST_JWT_SECRET

pytestmark = pytest.mark.process

WORKER = Path(sys.executable).with_name("cronjobs-worker")
SIGNING_SECRET = "end-to-end-signing-secret"
RUN_TIMEOUT = 20.0
FINAL = {"succeeded", "failed", "timeout", "abandoned", "skipped", "missed"}
USER, OTHER, ADMIN = "e2e-user", "e2e-other", "e2e-admin"
# Allowed by name so that only the address policy can refuse them.
ALLOWED_HOSTS = "localhost,127.0.0.1,169.254.169.254,10.0.0.1,hooks.example.com"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Controller, SmtpSink]]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, sink
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def web() -> Iterator[WebServer]:
    server = WebServer(secret=SIGNING_SECRET.encode())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def e2e_settings(mongo_uri: str, smtp: tuple[Controller, SmtpSink], web: WebServer) -> Settings:
    return load_settings(
        {},
        mongodb_uri=mongo_uri,
        db_name=f"cronjobs_e2e_{uuid.uuid4().hex[:10]}",
        jwt_secret=TEST_JWT_SECRET,
        smtp_host="127.0.0.1",
        smtp_port=smtp[0].port,
        smtp_from="cron@jobs.example",
        http_base_url=f"http://127.0.0.1:{web.port}",
        http_allowed_hosts=ALLOWED_HOSTS,
        http_signing_secret=SIGNING_SECRET,
        http_allow_private_networks=False,
    )


def _worker_environment(settings: Settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}
    env.update(
        {
            "CRON_MONGODB_URI": settings.mongodb_uri,
            "CRON_DB_NAME": settings.db_name,
            "CRON_SMTP_HOST": settings.smtp_host,
            "CRON_SMTP_PORT": str(settings.smtp_port),
            "CRON_SMTP_FROM": settings.smtp_from,
            "CRON_HTTP_BASE_URL": settings.http_base_url,
            "CRON_HTTP_ALLOWED_HOSTS": ",".join(settings.http_allowed_hosts),
            "CRON_HTTP_SIGNING_SECRET": SIGNING_SECRET,
            "CRON_HTTP_ALLOW_PRIVATE_NETWORKS": "false",
            "CRON_WORKER_NAME": f"e2e-{uuid.uuid4().hex[:6]}",
            "CRON_HEARTBEAT_SECONDS": "1",
            "CRON_LEASE_SECONDS": "10",
            "CRON_POLL_INTERVAL_SECONDS": "1",
            "CRON_LOG_JSON": "true",
            "CRON_METRICS_PORT": "0",  # no fixed port in tests
        }
    )
    return env


class Worker:
    """A `cronjobs-worker` subprocess with its output in a file."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(WORKER)],
                env=_worker_environment(settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"cronjobs-worker exited with {self.process.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def worker(e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    process = Worker(e2e_settings, tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
async def e2e_db(e2e_settings: Settings) -> AsyncIterator[Database]:
    client = create_client(e2e_settings)
    try:
        yield client[e2e_settings.db_name]
    finally:
        await client.drop_database(e2e_settings.db_name)
        await client.close()


@pytest.fixture(scope="module")
async def api(e2e_settings: Settings, e2e_db: Database) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(e2e_settings)) as client:
        yield client


def _auth(settings: Settings, subject: str, admin: bool = False) -> dict[str, str]:
    token = mint_token(settings, subject, roles=("admin",) if admin else ())
    return {"Authorization": f"Bearer {token}"}


def _job(name: str, job_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"{name}-{uuid.uuid4().hex[:6]}",
        "type": job_type,
        "cron": "0 0 1 1 *",  # yearly: only run-now runs it during the test
        "timezone": "UTC",
        "payload": payload,
        "retry": {"maxAttempts": 1},
    }


async def _create(
    api: AsyncTestClient[Any], headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await api.post("/api/cron/jobs", json=body, headers=headers)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def _run_now(
    api: AsyncTestClient[Any], headers: dict[str, str], job_id: str, worker: Worker
) -> dict[str, Any]:
    """Queue a run-now and wait until the worker finished it; return the run."""
    response = await api.post(f"/api/cron/jobs/{job_id}/run-now", headers=headers)
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        worker.check_alive()
        runs = await api.get(f"/api/cron/jobs/{job_id}/runs", headers=headers)
        assert runs.status_code == 200, runs.text
        for run in runs.json()["items"]:
            if run["id"] == run_id and run["status"] in FINAL:
                return dict(run)
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {RUN_TIMEOUT} s")


async def test_send_email_arrives(
    api: AsyncTestClient[Any],
    e2e_settings: Settings,
    worker: Worker,
    smtp: tuple[Controller, SmtpSink],
) -> None:
    headers = _auth(e2e_settings, USER)
    subject = f"Digest {uuid.uuid4().hex[:8]}"
    payload = {
        "to": ["ada@example.com", "grace@example.org"],
        "subject": subject,
        "template": "digest",
        "params": {"items": [{"title": "<b>News</b>", "url": "https://example.com/n"}]},
    }
    job = await _create(api, headers, _job("mail", "sendEmail", payload))
    run = await _run_now(api, headers, job["id"], worker)

    assert run["status"] == "succeeded", run
    assert run["result"]["recipients"] == 2
    [mail] = [m for m in smtp[1].messages if m.message["Subject"] == subject]
    assert mail.rcpt_tos == ["ada@example.com", "grace@example.org"]
    assert mail.message["Message-ID"] == run["result"]["messageId"]
    html = mail.message.get_body(("html",))
    assert html is not None and "&lt;b&gt;News&lt;/b&gt;" in html.get_content()


async def test_purge_sessions_removes_stale_sessions(
    api: AsyncTestClient[Any], e2e_settings: Settings, e2e_db: Database, worker: Worker
) -> None:
    now = datetime.now(UTC)
    sessions = e2e_db[e2e_settings.sessions_collection]
    await sessions.insert_many(
        [{"user": f"old-{i}", "lastSeenAt": now - timedelta(days=100 + i)} for i in range(5)]
        + [{"user": "active", "lastSeenAt": now - timedelta(days=1)}]
    )
    payload = {"inactiveDays": 90}
    user_attempt = await api.post(
        "/api/cron/jobs",
        json=_job("purge", "purgeSessions", payload),
        headers=_auth(e2e_settings, USER),
    )
    assert user_attempt.status_code == 403, user_attempt.text

    headers = _auth(e2e_settings, ADMIN, admin=True)
    job = await _create(api, headers, _job("purge", "purgeSessions", payload))
    run = await _run_now(api, headers, job["id"], worker)

    assert run["status"] == "succeeded", run
    assert run["result"]["deleted"] == 5
    assert [d["user"] async for d in sessions.find({}, {"user": 1})] == ["active"]


async def test_generate_report_is_stored_and_served(
    api: AsyncTestClient[Any], e2e_settings: Settings, e2e_db: Database, worker: Worker
) -> None:
    now = datetime.now(UTC)
    mine, theirs = ObjectId(), ObjectId()

    def past_run(job: ObjectId, owner: str, status: str, error: str) -> dict[str, Any]:
        at = now - timedelta(hours=2)
        return {
            "jobId": job,
            "ownerId": owner,
            "jobName": f"{owner}-job",
            "type": "httpRequest",
            "slot": f"{at:%Y-%m-%dT%H:%M:%SZ}-{ObjectId()}",
            "scheduledFor": at,
            "trigger": "schedule",
            "attempt": 1,
            "status": status,
            "createdAt": at,
            "endedAt": at,
            "durationMs": 40,
            "error": error,
        }

    await e2e_db[RUNS].insert_many(
        [
            past_run(mine, USER, "failed", "HTTP 500 from example.com"),
            past_run(mine, USER, "failed", "HTTP 502 from example.com"),
            past_run(theirs, OTHER, "failed", "secret of another user"),
        ]
    )
    headers = _auth(e2e_settings, USER)
    job = await _create(
        api, headers, _job("report", "generateReport", {"type": "jobFailures", "period": "daily"})
    )
    run = await _run_now(api, headers, job["id"], worker)
    assert run["status"] == "succeeded", run

    response = await api.get(f"/api/cron/jobs/{job['id']}/reports", headers=headers)
    assert response.status_code == 200, response.text
    [report] = response.json()["items"]
    assert report["id"] == run["result"]["reportId"]
    assert report["ownerId"] == USER and report["type"] == "jobFailures"
    errors = sorted(row["error"] for row in report["data"]["failures"])
    assert errors == ["HTTP 500 from example.com", "HTTP 502 from example.com"]
    assert "secret of another user" not in response.text

    elsewhere = await api.get(
        f"/api/cron/jobs/{job['id']}/reports", headers=_auth(e2e_settings, OTHER)
    )
    assert elsewhere.status_code == 404


async def test_http_request_reaches_the_endpoint_signed(
    api: AsyncTestClient[Any], e2e_settings: Settings, worker: Worker, web: WebServer
) -> None:
    headers = _auth(e2e_settings, USER)
    marker = uuid.uuid4().hex
    payload = {"url": f"/hooks/{marker}", "body": {"marker": marker}, "headers": {"X-App": "1"}}
    job = await _create(api, headers, _job("hook", "httpRequest", payload))
    run = await _run_now(api, headers, job["id"], worker)

    assert run["status"] == "succeeded", run
    assert run["result"]["statusCode"] == 200
    [request] = [r for r in web.requests if r.path == f"/hooks/{marker}"]
    assert request.signature_ok
    assert request.headers["X-Cron-Job-Id"] == job["id"]
    assert request.headers["X-Cron-Run-Id"] == run["id"]
    assert request.headers["X-App"] == "1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:{port}/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://10.0.0.1/internal", "private"),
        ("https://evil.example.net/hook", "host 'evil.example.net' is not allowed"),
    ],
)
async def test_ssrf_targets_are_refused_at_creation(
    api: AsyncTestClient[Any], e2e_settings: Settings, web: WebServer, url: str, message: str
) -> None:
    body = _job("ssrf", "httpRequest", {"url": url.format(port=web.port)})
    response = await api.post("/api/cron/jobs", json=body, headers=_auth(e2e_settings, USER))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "payload.url"
    assert message in error["message"]
    assert "CRON_" not in response.text  # the owner never reads the operator's settings


async def test_a_host_resolving_to_loopback_is_refused_at_run_time(
    api: AsyncTestClient[Any], e2e_settings: Settings, worker: Worker, web: WebServer
) -> None:
    headers = _auth(e2e_settings, USER)
    marker = uuid.uuid4().hex
    payload = {"url": f"http://localhost:{web.port}/hooks/{marker}"}
    job = await _create(api, headers, _job("rebind", "httpRequest", payload))  # name allowed
    run = await _run_now(api, headers, job["id"], worker)

    assert run["status"] == "failed", run
    assert "'localhost' resolves to" in run["error"] and "loopback" in run["error"]
    assert not [r for r in web.requests if marker in r.path]
    stored = await api.get(f"/api/cron/jobs/{job['id']}", headers=headers)
    assert "loopback" in stored.json()["lastError"]
