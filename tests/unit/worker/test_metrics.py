"""worker.metrics: bounded labels, the reason kinds, the null object, the exporter, the sampler."""

from __future__ import annotations

import asyncio
import inspect
import math
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId
from prometheus_client import generate_latest
from pymongo.errors import AutoReconnect

from shared.model import MisfirePolicy, OverlapPolicy, RunStatus
from shared.runs import RunReason, scheduled_run
from shared.settings import load_settings
from worker import metrics as metrics_module
from worker.claiming import Verdict, judge
from worker.metrics import (
    BACKLOG_COUNT_CAP,
    NullMetrics,
    WorkerMetrics,
    metrics_for,
    reason_kind,
)
from worker.store import JobView, parse_job, parse_run


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def job(cron: str = "0 * * * *", **fields: object) -> JobView:
    return parse_job(
        {"_id": ObjectId(), "ownerId": "o", "name": "j", "type": "noop", "cron": cron, **fields}
    )


def test_every_reason_the_claim_path_decides_has_its_own_label_under_its_status() -> None:
    slot = datetime(2026, 5, 1, 8, tzinfo=UTC)
    now = slot + timedelta(seconds=1)
    on_time = job(enabled=True, overlapPolicy=OverlapPolicy.SKIP.value)
    deadline = slot + timedelta(minutes=1)
    queued = parse_run(scheduled_run(on_time, slot, now=slot, start_deadline=deadline))
    late = parse_run(scheduled_run(on_time, slot, now=slot, start_deadline=slot))
    cases = [
        judge(queued, None, now, busy=False),
        judge(queued, job(enabled=False), now, busy=False),
        judge(queued, job("30 * * * *", enabled=True), now, busy=False),
        judge(queued, job(enabled=True, nextRunAt=slot + timedelta(hours=2)), now, busy=False),
        judge(late, on_time, now, busy=False),
        judge(late, job(enabled=True, misfirePolicy=MisfirePolicy.SKIP.value), now, busy=False),
        judge(queued, on_time, now, busy=True),
    ]
    labelled = set()
    for judgement in cases:
        assert judgement.reason is not None
        status = "missed" if judgement.verdict is Verdict.MISS else "skipped"
        kind = reason_kind(judgement.reason.value)
        assert kind == judgement.reason.name.lower()
        assert kind in metrics_module.SLOT_REASONS[status], (status, kind)
        labelled.add(kind)
    assert len(labelled) == len(cases)  # seven reasons, seven labels
    # The schedule stage's records, and texts that are no reason (an id must never show).
    assert reason_kind(RunReason.SUMMARISED.value) in metrics_module.SLOT_REASONS["missed"]
    assert reason_kind(None) == "other"
    assert reason_kind(f"job {ObjectId()} exploded") == "other"


def test_runs_are_counted_by_type_trigger_and_outcome() -> None:
    metrics = WorkerMetrics()
    metrics.run_finished("noop", "schedule", RunStatus.SUCCEEDED, 0.2)
    metrics.run_finished("noop", "schedule", RunStatus.SUCCEEDED, 0.4)
    metrics.run_finished("sendEmail", "retry", RunStatus.FAILED, 1.5)
    labels = {"type": "noop", "trigger": "schedule", "outcome": "succeeded"}
    assert value(metrics, "cronjobs_runs_finished_total", **labels) == 2
    assert value(metrics, "cronjobs_run_duration_seconds_count", type="noop") == 2
    assert value(metrics, "cronjobs_run_duration_seconds_sum", type="noop") == pytest.approx(0.6)
    failed = {"type": "sendEmail", "trigger": "retry", "outcome": "failed"}
    assert value(metrics, "cronjobs_runs_finished_total", **failed) == 1


def test_unknown_or_unbounded_values_never_become_label_values() -> None:
    metrics = WorkerMetrics()
    hostile = str(ObjectId())
    metrics.run_finished(hostile, hostile, RunStatus.FAILED, 1.0)
    metrics.run_finished(None, None, RunStatus.FAILED, 1.0)
    metrics.fire_lag(hostile, 3.0)
    metrics.slot_recorded(RunStatus.MISSED, f"missed because of {hostile}")
    metrics.db_error(hostile)
    metrics.run_reaped(hostile, "schedule", retried=True)
    text = generate_latest(metrics.registry).decode()
    assert hostile not in text
    other = {"type": "other", "trigger": "other", "outcome": "failed"}
    assert value(metrics, "cronjobs_runs_finished_total", **other) == 2
    assert value(metrics, "cronjobs_fire_lag_seconds_count", trigger="other") == 1
    assert value(metrics, "cronjobs_db_errors_total", kind="other") == 1
    assert value(metrics, "cronjobs_slots_recorded_total", status="missed", reason="other") == 1


def test_every_series_exists_at_zero_before_anything_happens() -> None:
    metrics = WorkerMetrics()
    text = generate_latest(metrics.registry).decode()
    for job_type in ("noop", "sendEmail", "purgeSessions", "generateReport", "httpRequest"):
        for trigger in ("schedule", "manual", "retry"):
            line = (
                f'cronjobs_runs_finished_total{{outcome="failed",trigger="{trigger}",'
                f'type="{job_type}"}} 0.0'
            )
            assert line in text
    assert 'cronjobs_db_errors_total{kind="claim"} 0.0' in text
    assert "_created" not in text  # no creation-timestamp series


def test_records_inserted_counts_missed_and_skipped_but_not_refused_ones() -> None:
    metrics = WorkerMetrics()
    documents: list[dict[str, Any]] = [
        {"status": "pending", "error": None},
        {"status": "missed", "error": RunReason.SUPERSEDED.value},
        {"status": "missed", "error": RunReason.SUPERSEDED.value},  # refused: recorded already
        {"status": "skipped", "error": RunReason.OVERLAP.value},
        {"status": "missed", "error": RunReason.MISFIRE_SKIP.value},
    ]
    metrics.records_inserted(documents, {2})
    assert (
        value(metrics, "cronjobs_slots_recorded_total", status="missed", reason="superseded") == 1
    )
    assert value(metrics, "cronjobs_slots_recorded_total", status="skipped", reason="overlap") == 1
    misfire = {"status": "missed", "reason": "misfire_skip"}
    assert value(metrics, "cronjobs_slots_recorded_total", **misfire) == 1


def test_reaped_runs_count_as_abandoned_attempts_with_their_retry() -> None:
    metrics = WorkerMetrics()
    metrics.run_reaped("noop", "schedule", retried=True)
    metrics.run_reaped("noop", "manual", retried=False)
    assert value(metrics, "cronjobs_runs_reaped_total") == 2
    assert value(metrics, "cronjobs_retries_queued_total") == 1
    abandoned = {"type": "noop", "trigger": "schedule", "outcome": "abandoned"}
    assert value(metrics, "cronjobs_runs_finished_total", **abandoned) == 1


def test_gauges_are_read_when_scraped() -> None:
    metrics = WorkerMetrics()
    in_flight = {"runs": 3}
    metrics.watch_capacity(lambda: in_flight["runs"], 32)
    assert value(metrics, "cronjobs_runs_in_flight") == 3
    assert value(metrics, "cronjobs_free_capacity") == 29
    in_flight["runs"] = 32
    assert value(metrics, "cronjobs_free_capacity") == 0
    metrics.set_mode("streams")
    metrics.set_mode("polling")
    assert value(metrics, "cronjobs_worker_mode", mode="polling") == 1
    assert value(metrics, "cronjobs_worker_mode", mode="streams") == 0
    age = value(metrics, "cronjobs_heartbeat_age_seconds")
    assert age is not None and math.isnan(age)  # no heartbeat yet
    metrics.heartbeat()
    age = value(metrics, "cronjobs_heartbeat_age_seconds")
    assert age is not None and 0 <= age < 1


def test_null_metrics_overrides_every_recorder() -> None:
    public = {
        name
        for name, member in inspect.getmembers(WorkerMetrics)
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    }
    assert public
    for name in public:
        assert name in NullMetrics.__dict__, f"NullMetrics does not override {name}"
    null = NullMetrics()
    null.run_finished("noop", "schedule", "succeeded", 1.0)
    assert generate_latest(null.registry) == b""


def test_port_zero_switches_metrics_off() -> None:
    assert isinstance(metrics_for(load_settings({}, metrics_port=0)), NullMetrics)
    enabled = metrics_for(load_settings({}, metrics_port=9464))
    assert type(enabled) is WorkerMetrics and enabled.port is None  # nothing bound yet


def test_the_exporter_serves_metrics_and_stops() -> None:
    metrics = WorkerMetrics()
    metrics.run_finished("noop", "manual", RunStatus.SUCCEEDED, 0.1)
    assert metrics.serve("127.0.0.1", 0)
    try:
        assert metrics.port
        response = httpx.get(f"http://127.0.0.1:{metrics.port}/metrics", timeout=5)
        assert response.status_code == 200
        assert (
            'cronjobs_runs_finished_total{outcome="succeeded",trigger="manual",type="noop"} 1.0'
            in response.text
        )
    finally:
        metrics.close()
    assert metrics.port is None


def test_a_busy_port_is_logged_not_fatal() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics = WorkerMetrics()
        assert metrics.serve("127.0.0.1", taken.getsockname()[1]) is False
        assert metrics.port is None
        metrics.close()


async def test_the_backlog_sampler_sets_gauges_and_counts_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_module, "BACKLOG_SAMPLE_SECONDS", 0.01)
    metrics = WorkerMetrics()
    stop = asyncio.Event()
    caps: list[int] = []
    answers: list[tuple[int, int] | Exception] = [(4, 2), AutoReconnect("down"), (7, 1)]

    async def count(cap: int) -> tuple[int, int]:
        caps.append(cap)
        answer = answers.pop(0)
        if not answers:
            stop.set()
        if isinstance(answer, Exception):
            raise answer
        return answer

    await asyncio.wait_for(metrics.sample_backlog(count, stop), 5)
    assert caps == [BACKLOG_COUNT_CAP] * 3
    assert value(metrics, "cronjobs_due_backlog") == 7
    assert value(metrics, "cronjobs_pending_runs") == 1
    assert value(metrics, "cronjobs_db_errors_total", kind="sample") == 1
