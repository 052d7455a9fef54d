"""The admin CLI for on-call: runs of a job, deleting jobs, job filters, `--json` anywhere,
and one-line errors for whatever the server answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo.database import Database as SyncDatabase

from shared.cli import main
from shared.db import JOBS, RUNS

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _json(capsys: pytest.CaptureFixture[str], environ: dict[str, str], *argv: str) -> Any:
    assert main(list(argv), environ) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _job(store: SyncDatabase[dict[str, Any]], owner: str, name: str, **fields: Any) -> str:
    job_id = ObjectId()
    store[JOBS].insert_one(
        {
            "_id": job_id,
            "ownerId": owner,
            "name": name,
            "type": fields.get("type", "noop"),
            "cron": "0 8 * * *",
            "timezone": "UTC",
            "payload": {},
            "enabled": fields.get("status") != "paused",
            "status": fields.get("status", "idle"),
            "nextRunAt": None,
            "version": 1,
            "createdAt": T0,
            "updatedAt": T0,
        }
    )
    return str(job_id)


def _run(
    store: SyncDatabase[dict[str, Any]], job_id: str, hour: int, status: str, trigger: str
) -> str:
    scheduled = T0 + timedelta(hours=hour)
    run_id = ObjectId()
    store[RUNS].insert_one(
        {
            "_id": run_id,
            "jobId": ObjectId(job_id),
            "ownerId": "alice",
            "type": "noop",
            "slot": f"{scheduled:%Y-%m-%dT%H:%M:%SZ}",
            "scheduledFor": scheduled,
            "trigger": trigger,
            "attempt": 1,
            "status": status,
            "notBefore": scheduled,
            "createdAt": scheduled,
        }
    )
    return str(run_id)


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["_id"] for row in rows]


def test_jobs_list_filters_by_type_and_status(
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    store: SyncDatabase[dict[str, Any]],
) -> None:
    mail = _job(store, "alice", "mail", type="sendEmail")
    paused = _job(store, "alice", "paused", status="paused")
    other = _job(store, "bob", "bobs", type="sendEmail", status="failed")
    assert ids(_json(capsys, environ, "jobs", "list", "--type", "sendEmail", "--json")) == [
        mail,
        other,
    ]
    assert ids(_json(capsys, environ, "--json", "jobs", "list", "--status", "paused")) == [paused]
    assert ids(
        _json(capsys, environ, "jobs", "--json", "list", "--owner", "bob", "--status", "failed")
    ) == [other]
    with pytest.raises(SystemExit) as usage:
        main(["jobs", "list", "--status", "sleeping"], environ)
    assert usage.value.code == 2
    assert "invalid choice: 'sleeping'" in capsys.readouterr().err


def test_runs_list_shows_a_jobs_runs_filtered_by_status(
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    store: SyncDatabase[dict[str, Any]],
) -> None:
    job = _job(store, "alice", "canary")
    ok = _run(store, job, 0, "succeeded", "schedule")
    failed = _run(store, job, 1, "failed", "schedule")
    manual = _run(store, job, 2, "timeout", "manual")
    rows = _json(capsys, environ, "runs", "list", job, "--json")
    assert [row["_id"] for row in rows] == [manual, failed, ok]
    bad = _json(
        capsys, environ, "--json", "runs", "list", job, "--status", "failed", "--status", "timeout"
    )
    assert [row["_id"] for row in bad] == [manual, failed]
    assert [
        r["_id"]
        for r in _json(capsys, environ, "--json", "runs", "list", job, "--trigger", "manual")
    ] == [manual]

    assert main(["runs", "list", job], environ) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["id", "scheduledFor", "trigger", "attempt", "status"]
    assert len(table) == 4

    assert main(["runs", "list", str(ObjectId())], environ) == 1
    assert "not found" in capsys.readouterr().err


def test_jobs_delete_removes_the_job_and_keeps_its_history(
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    store: SyncDatabase[dict[str, Any]],
) -> None:
    job = _job(store, "alice", "old")
    run = _run(store, job, 0, "pending", "schedule")
    assert main(["jobs", "delete", job], environ) == 0
    assert capsys.readouterr().out == f"deleted job {job} ('old' of alice)\n"
    assert store[JOBS].find_one({"_id": ObjectId(job)}) is None
    rows = _json(capsys, environ, "runs", "list", job, "--json")
    assert [(row["_id"], row["status"], row["error"]) for row in rows] == [
        (run, "skipped", "job deleted")
    ]
    assert main(["jobs", "delete", job], environ) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cronjobs: error: ") and "not found" in err[0]


def test_db_init_reports_an_index_it_cannot_build_as_one_line(
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    store: SyncDatabase[dict[str, Any]],
) -> None:
    # Two jobs with one name: the server refuses the unique (owner, name) index.
    store[JOBS].drop_index("owner_name_unique")
    _job(store, "alice", "twin")
    _job(store, "alice", "twin")
    assert main(["db", "init"], environ) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("cronjobs: error: cannot create index owner_name_unique")
    assert "Traceback" not in captured.err and captured.out == ""
