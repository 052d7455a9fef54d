"""A real Prometheus (Debian's `prometheus`) scraping a real API and worker: its numbers must
agree with `cron_runs`.

One API, one worker and one Prometheus (1 s scrapes, temporary storage, loopback only) serve
the module; every process is bounded in time and killed in teardown.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pymongo import MongoClient

from shared.db import JOBS, RUNS
from shared.settings import load_settings
from shared.tokens import mint_token
from tests.support import TEST_JWT_SECRET
from worker.metrics import reason_kind

pytestmark = [pytest.mark.process, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
API_BIN = Path(sys.executable).with_name("cronjobs-api")
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
ADMIN = "metrics-admin"
EXECUTED = ("succeeded", "failed", "timeout", "abandoned")
# Prometheus scrapes every second; after the database settles its numbers must follow soon.
AGREE_WITHIN = 30.0
# How long a query waits for a target whose last scrape failed to be scraped again.
SCRAPE_RECOVERY = 15.0
# Fire lag is measured when the handler task starts, the run's `startedAt` when it is
# claimed: the first may exceed the second by the time between the two (milliseconds, more
# on a loaded machine), never fall short of it beyond the millisecond rounding of BSON dates.
LAG_SLACK_PER_RUN = 2.0
WORKER_FAMILIES = (
    "cronjobs_runs_finished_total",
    "cronjobs_run_duration_seconds",
    "cronjobs_fire_lag_seconds",
    "cronjobs_slots_recorded_total",
    "cronjobs_retries_queued_total",
    "cronjobs_runs_reaped_total",
    "cronjobs_claim_conflicts_total",
    "cronjobs_runs_in_flight",
    "cronjobs_free_capacity",
    "cronjobs_due_backlog",
    "cronjobs_pending_runs",
    "cronjobs_worker_mode",
    "cronjobs_stream_resyncs_total",
    "cronjobs_db_errors_total",
    "cronjobs_heartbeat_age_seconds",
)
API_FAMILIES = (
    "cronjobs_api_requests_total",
    "cronjobs_api_request_duration_seconds",
    "cronjobs_api_jobs_created_total",
    "cronjobs_api_jobs_deleted_total",
    "cronjobs_api_run_now_total",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (httpx.HTTPError, OSError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")


class Process:
    """A subprocess with its output in a file; SIGTERM, then SIGKILL, at teardown."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{self.popen.args!r} exited {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


class Stack:
    """API, worker and Prometheus on loopback, and helpers to ask each of them."""

    def __init__(self, api_url: str, worker_metrics: str, prometheus_url: str, db: Any) -> None:
        self.api_url = api_url
        self.worker_metrics = worker_metrics
        self.prometheus_url = prometheus_url
        self.db = db
        token = mint_token(load_settings({}, jwt_secret=TEST_JWT_SECRET), ADMIN, roles=["admin"])
        self.http = httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"})

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.api_url}/api/cron{path}", **kwargs)

    def create_job(self, name: str, cron: str, payload: dict[str, Any], **options: Any) -> str:
        body = {"name": name, "type": "noop", "cron": cron, "payload": payload, **options}
        response = self.api("POST", "/jobs", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; an empty answer while a target's last scrape failed is asked again.

        A scrape that misses its 1 s timeout (a busy machine) marks every series of that target
        stale until the next good scrape, so for a moment each of them reads as absent.
        """
        deadline = time.monotonic() + SCRAPE_RECOVERY
        while True:
            result = self._instant(promql)
            if result or time.monotonic() > deadline or self._targets_up():
                return result
            time.sleep(0.5)

    def _targets_up(self) -> bool:
        up = self._instant('up{job=~"cronjobs-.*"}')
        return len(up) == 2 and all(float(sample["value"][1]) == 1.0 for sample in up)

    def _instant(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10
        )
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def by_labels(self, promql: str, *labels: str) -> dict[tuple[str, ...], float]:
        """Nonzero values of an instant query, keyed by the given label values."""
        found = {}
        for sample in self.query(promql):
            value = float(sample["value"][1])
            if value:
                found[tuple(sample["metric"].get(label, "") for label in labels)] = value
        return found


@pytest.fixture(scope="module")
def stack(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = shutil.which("prometheus")
    # Installed by tools/system_deps.sh (Debian's prometheus package); never skipped.
    assert prometheus_bin, "prometheus is missing: run `make system-deps`"
    tmp = tmp_path_factory.mktemp("metrics")
    db_name = f"cronjobs_metrics_{ObjectId()}"
    base = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}
    common = {
        **base,
        "CRON_MONGODB_URI": mongo_uri,
        "CRON_DB_NAME": db_name,
        "CRON_JWT_SECRET": TEST_JWT_SECRET,
        "CRON_LOG_JSON": "true",
    }
    api_port, worker_port, prometheus_port = _free_port(), _free_port(), _free_port()
    processes: list[Process] = []
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        api = Process([str(API_BIN)], {**common, "CRON_API_PORT": str(api_port)}, tmp / "api.log")
        processes.append(api)
        worker_env = {
            **common,
            "CRON_WORKER_NAME": "metrics-worker",
            "CRON_METRICS_PORT": str(worker_port),
            "CRON_HEARTBEAT_SECONDS": "1",
            "CRON_LEASE_SECONDS": "10",
            "CRON_POLL_INTERVAL_SECONDS": "1",
        }
        processes.append(
            Process([str(API_BIN.with_name("cronjobs-worker"))], worker_env, tmp / "worker.log")
        )
        config = tmp / "prometheus.yml"
        config.write_text(_prometheus_config(api_port, worker_port), encoding="utf-8")
        processes.append(
            Process(
                [
                    prometheus_bin,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    "--log.level=warn",
                ],
                base,
                tmp / "prometheus.log",
            )
        )
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        api_url = f"http://127.0.0.1:{api_port}"
        worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
        for process in processes:
            process.check_alive()
        _wait_for(lambda: httpx.get(f"{api_url}/api/cron/readyz").is_success, 60, "API ready")
        _wait_for(lambda: httpx.get(worker_metrics).is_success, 60, "worker /metrics")
        _wait_for(lambda: httpx.get(f"{prometheus_url}/-/ready").is_success, 60, "Prometheus")
        stack = Stack(api_url, worker_metrics, prometheus_url, client[db_name])
        yield stack
        stack.http.close()
    finally:
        for process in processes:
            process.stop()
        client.drop_database(db_name)
        client.close()


def _prometheus_config(api_port: int, worker_port: int) -> str:
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{RULES}"]
scrape_configs:
  - job_name: cronjobs-api
    static_configs: [{{targets: ["127.0.0.1:{api_port}"]}}]
  - job_name: cronjobs-worker
    static_configs: [{{targets: ["127.0.0.1:{worker_port}"]}}]
"""


@pytest.fixture(scope="module")
def activity(stack: Stack) -> dict[str, str]:
    """A handful of jobs: scheduled successes, a failure, a retry, missed slots; all settled."""
    jobs = {
        "every_second": stack.create_job("every second", "* * * * * *", {}),
        "fails": stack.create_job(
            "fails", "0 0 1 1 *", {"failAttempts": 5}, retry={"maxAttempts": 1}
        ),
        "retried": stack.create_job(
            "retried",
            "0 0 1 1 *",
            {"failAttempts": 1},
            retry={"maxAttempts": 2, "backoffSeconds": 1},
        ),
        "manual": stack.create_job("manual", "0 0 1 1 *", {}),
        "missed": stack.create_job("missed", "0 0 1 1 *", {}),
    }
    for name in ("fails", "retried", "manual"):
        assert stack.api("POST", f"/jobs/{jobs[name]}/run-now").status_code == 202
    # Two yearly slots long past: the latest is a misfire beyond its grace, the earlier one is
    # superseded; both are recorded `missed`, neither runs.
    now = datetime.now(UTC)
    stack.db[JOBS].update_one(
        {"_id": ObjectId(jobs["missed"])},
        {"$set": {"nextRunAt": datetime(now.year - 1, 1, 1, tzinfo=UTC)}},
    )
    scheduled = {"jobId": ObjectId(jobs["every_second"]), "trigger": "schedule"}
    _wait_for(
        lambda: stack.db[RUNS].count_documents({**scheduled, "status": "succeeded"}) >= 3,
        60,
        "three scheduled runs",
    )
    assert stack.api("PATCH", f"/jobs/{jobs['every_second']}", json={"enabled": False}).is_success
    # Error answers, recorded with their status.
    assert stack.api("GET", f"/jobs/{ObjectId()}").status_code == 404
    assert httpx.get(f"{stack.api_url}/api/cron/jobs").status_code == 401
    deleted = stack.create_job("deleted", "0 0 1 1 *", {})
    assert stack.api("DELETE", f"/jobs/{deleted}").status_code == 204

    def state() -> dict[str, int]:
        runs = stack.db[RUNS]
        return {
            "unfinished": runs.count_documents({"status": {"$in": ["pending", "running"]}}),
            "retried": runs.count_documents({"jobId": ObjectId(jobs["retried"])}),
            "missed": runs.count_documents({"jobId": ObjectId(jobs["missed"])}),
            "fails": runs.count_documents({"jobId": ObjectId(jobs["fails"])}),
            "manual": runs.count_documents({"jobId": ObjectId(jobs["manual"])}),
        }

    settled = {"unfinished": 0, "retried": 2, "missed": 2, "fails": 1, "manual": 1}
    deadline = time.monotonic() + 60
    while (found := state()) != settled:
        assert time.monotonic() < deadline, f"runs not settled within 60 s: {found}"
        time.sleep(0.25)
    return jobs


def _agree(expected: Callable[[], Any], actual: Callable[[], Any], what: str) -> None:
    """Prometheus catches up with the database within AGREE_WITHIN seconds."""
    deadline = time.monotonic() + AGREE_WITHIN
    while True:
        want, got = expected(), actual()
        if want == got:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: cron_runs says {want}, Prometheus says {got}")
        time.sleep(0.5)


def _runs(stack: Stack, query: dict[str, Any]) -> list[dict[str, Any]]:
    return list(stack.db[RUNS].find(query))


def test_runs_finished_agree_with_cron_runs(stack: Stack, activity: dict[str, str]) -> None:
    def expected() -> dict[tuple[str, ...], float]:
        runs = _runs(stack, {"status": {"$in": list(EXECUTED)}})
        counts = Counter((run["type"], run["trigger"], run["status"]) for run in runs)
        return {key: float(value) for key, value in counts.items()}

    _agree(
        expected,
        lambda: stack.by_labels(
            "sum by (type, trigger, outcome) (cronjobs_runs_finished_total)",
            "type",
            "trigger",
            "outcome",
        ),
        "runs finished by type, trigger and outcome",
    )
    outcomes = {key[2] for key in expected()}
    triggers = {key[1] for key in expected()}
    assert outcomes == {"succeeded", "failed"} and triggers == {"schedule", "manual", "retry"}


def test_missed_slots_and_retries_agree_with_cron_runs(
    stack: Stack, activity: dict[str, str]
) -> None:
    def expected_slots() -> dict[tuple[str, ...], float]:
        runs = _runs(stack, {"status": {"$in": ["missed", "skipped"]}})
        counts = Counter(
            (run["status"], reason_kind(run.get("error")))
            for run in runs
            # The API's own records of due slots an edit skipped (pausing `every_second` may
            # meet a slot not yet queued) carry no worker: no worker counts them.
            if not (run["status"] == "skipped" and run.get("workerId") is None)
        )
        return {key: float(value) for key, value in counts.items()}

    _agree(
        expected_slots,
        lambda: stack.by_labels(
            "sum by (status, reason) (cronjobs_slots_recorded_total)", "status", "reason"
        ),
        "slots recorded by status and reason",
    )
    recorded = set(expected_slots())
    missed = {("missed", "misfire_grace"), ("missed", "superseded")}
    assert missed <= recorded
    # A slot of `every_second` queued just before the pause is skipped by the claim path.
    assert recorded <= missed | {("skipped", "paused")}

    def retries() -> dict[tuple[str, ...], float]:
        return {(): float(stack.db[RUNS].count_documents({"trigger": "retry"}))}

    _agree(retries, lambda: stack.by_labels("sum(cronjobs_retries_queued_total)"), "retries")
    assert retries() == {(): 1.0}


def test_fire_lag_histogram_agrees_with_cron_runs(stack: Stack, activity: dict[str, str]) -> None:
    started = _runs(stack, {"status": {"$in": list(EXECUTED)}})
    counts = Counter(run["trigger"] for run in started)
    _agree(
        lambda: {(trigger,): float(count) for trigger, count in counts.items()},
        lambda: stack.by_labels("sum by (trigger) (cronjobs_fire_lag_seconds_count)", "trigger"),
        "fire-lag observations by trigger",
    )
    infinite = stack.by_labels(
        'sum by (trigger) (cronjobs_fire_lag_seconds_bucket{le="+Inf"})', "trigger"
    )
    assert infinite == {(trigger,): float(count) for trigger, count in counts.items()}
    sums = stack.by_labels("sum by (trigger) (cronjobs_fire_lag_seconds_sum)", "trigger")
    for trigger, count in counts.items():
        # Lag counts from when the run was due: its `notBefore` (a retry: after its backoff).
        recorded = sum(
            (run["startedAt"] - (run.get("notBefore") or run["scheduledFor"])).total_seconds()
            for run in started
            if run["trigger"] == trigger
        )
        observed = sums.get((trigger,), 0.0)
        assert recorded - 0.001 * count <= observed <= recorded + LAG_SLACK_PER_RUN * count, (
            trigger,
            recorded,
            observed,
        )
    # Retries wait their backoff (1 s here) before they are due; their lag counts from then.
    median = stack.query(
        'histogram_quantile(0.5, sum by (le) (cronjobs_fire_lag_seconds_bucket{trigger="retry"}))'
    )
    assert float(median[0]["value"][1]) < 1.0


def test_api_counters_and_request_statuses(stack: Stack, activity: dict[str, str]) -> None:
    _agree(
        lambda: {(): 6.0},
        lambda: stack.by_labels("sum(cronjobs_api_jobs_created_total)"),
        "jobs created",
    )
    assert stack.by_labels("sum(cronjobs_api_jobs_deleted_total)") == {(): 1.0}
    manual = float(stack.db[RUNS].count_documents({"trigger": "manual"}))
    assert stack.by_labels("sum(cronjobs_api_run_now_total)") == {(): manual} == {(): 3.0}
    statuses = stack.by_labels(
        "sum by (method, path, status_code) (cronjobs_api_requests_total)",
        "method",
        "path",
        "status_code",
    )
    assert statuses[("POST", "/api/cron/jobs", "201")] == 6.0
    assert statuses[("GET", "/api/cron/jobs/{job_id}", "404")] == 1.0
    assert statuses[("POST", "/api/cron/jobs/{job_id}/run-now", "202")] == 3.0
    assert statuses[("GET", "/api/cron/jobs", "401")] == 1.0


def test_worker_gauges_and_the_rules_prometheus_loaded(
    stack: Stack, activity: dict[str, str]
) -> None:
    assert stack.by_labels('up{job=~"cronjobs-.*"}', "job") == {
        ("cronjobs-api",): 1.0,
        ("cronjobs-worker",): 1.0,
    }
    assert stack.by_labels("sum(cronjobs_worker_mode)") == {(): 1.0}
    _wait_for(lambda: stack.query("cronjobs_due_backlog >= 0"), 20, "a backlog sample")
    age = float(stack.query("cronjobs_heartbeat_age_seconds")[0]["value"][1])
    assert 0 <= age < 10
    capacity = stack.query("cronjobs_free_capacity + cronjobs_runs_in_flight")
    assert float(capacity[0]["value"][1]) == 32.0
    rules = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=10).json()
    names = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
    assert "CronjobsFireLagHigh" in names and "CronjobsWorkerDown" in names


def test_metrics_endpoints_show_every_family_and_no_unbounded_label(
    stack: Stack, activity: dict[str, str]
) -> None:
    texts = {
        "worker": httpx.get(stack.worker_metrics, timeout=10).text,
        "api": httpx.get(f"{stack.api_url}/metrics", timeout=10).text,
    }
    for family in WORKER_FAMILIES:
        assert f"\n{family}" in texts["worker"], family
    for family in API_FAMILIES:
        assert f"\n{family}" in texts["api"], family
    job_ids = set(activity.values())
    run_ids = {str(run["_id"]) for run in _runs(stack, {})}
    forbidden = job_ids | run_ids | {ADMIN, "metrics-worker"}
    for where, text in texts.items():
        values = set(re.findall(r'="((?:[^"\\]|\\.)*)"', text))
        assert values, where
        assert not values & forbidden, (where, values & forbidden)
        assert not [value for value in values if re.search(r"[0-9a-f]{24}", value)], where
    # The same through Prometheus: every label value of every cronjobs series.
    series = httpx.get(
        f"{stack.prometheus_url}/api/v1/series",
        params={"match[]": '{__name__=~"cronjobs_.*"}'},
        timeout=10,
    ).json()["data"]
    stored = {value for labels in series for value in labels.values()}
    assert stored and not stored & forbidden


def test_every_dashboard_query_and_alert_rule_works_on_real_data(
    stack: Stack, activity: dict[str, str]
) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "cronjobs.json").read_text())
    # With this activity only the quiet signals may be empty (nothing reaped, no conflicts...).
    must_show = {"Throughput by outcome", "Fire lag (scheduled runs)", "Workers up"}
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            # Grafana's $__rate_interval is at least four scrape intervals.
            expr = target["expr"].replace("$__rate_interval", "1m")
            # rate() needs two scrapes of a series: one born a moment ago has only one yet.
            patience = SCRAPE_RECOVERY if panel["title"] in must_show else 0.0
            deadline = time.monotonic() + patience
            # A PromQL error raises (status "error", HTTP 400).
            while not (found := stack.query(expr)) and time.monotonic() < deadline:
                time.sleep(0.5)
            if not found:
                empty.append((panel["title"], expr))
    titles = {title for title, _ in empty}
    assert not titles & must_show, empty

    def health() -> dict[str, str]:
        rules = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=10).json()
        return {
            rule["name"]: rule.get("health")
            for group in rules["data"]["groups"]
            for rule in group["rules"]
        }

    # Every rule evaluates (every second here) without error: health "ok", not "err".
    _wait_for(lambda: set(health().values()) == {"ok"}, 10, f"rules healthy: {health()}")


def test_several_api_server_processes_count_into_one_metrics_page(
    mongo_uri: str, tmp_path: Path
) -> None:
    """CRON_API_WORKERS=2: whichever process answers a scrape reports every process's count."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}
    env.update(
        {
            "CRON_MONGODB_URI": mongo_uri,
            "CRON_DB_NAME": f"cronjobs_metrics_{ObjectId()}",
            "CRON_JWT_SECRET": TEST_JWT_SECRET,
            "CRON_API_PORT": str(port),
            "CRON_API_WORKERS": "2",
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    api = Process([str(API_BIN)], env, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: httpx.get(f"{base}/api/cron/healthz").is_success, 60, "API up")
        before = _healthz_count(base)
        for _ in range(40):  # a new connection each: the kernel spreads them over both
            assert httpx.get(f"{base}/api/cron/healthz").is_success
        counts = {_healthz_count(base) for _ in range(10)}
        assert counts == {before + 40}, counts
        api.check_alive()
    finally:
        api.stop()
    leftovers = [
        path
        for path in Path(tempfile.gettempdir()).glob("cronjobs-api-metrics-*")
        if str(api.popen.pid) in path.name
    ]
    assert not leftovers, leftovers


def _healthz_count(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("cronjobs_api_requests_total{") and 'path="/api/cron/healthz"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
