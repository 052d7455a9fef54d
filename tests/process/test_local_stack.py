"""`make run`'s stack as a user meets it: start, create a job over HTTP, watch it run, Ctrl-C."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.process.stack import GRACE_SECONDS, ROOT, Stack, running_stack, wait_for

pytestmark = pytest.mark.process

# Generous: on a busy machine the stack's first claim pass can take many seconds.
RUN_TIMEOUT = 40.0
# The stack runs with the default CRON_RATE_LIMIT (60/minute per owner). Polling once a second
# keeps the whole wait under it, as a client must; at 5 polls/s a slow machine got 429s.
RUN_POLL_SECONDS = 1.0
RUN_ENV = ROOT / ".local" / "run.env"


def _run_env() -> dict[str, str]:
    values = {}
    for line in RUN_ENV.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = shlex.split(value)[0]
    return values


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(tmp_path) as started:
        yield started


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_local_stack_runs_a_job_and_stops_cleanly_on_sigint(stack: Stack) -> None:
    started = time.monotonic()

    stack.wait_until_ready()
    api, admin_token = stack.printed("API"), stack.printed("ADMIN_TOKEN")
    assert api and admin_token and stack.printed("USER_TOKEN")
    assert "curl" in stack.output() and f"{api}/schema" in stack.output()
    pids = stack.pids()
    assert set(pids) >= {"cronjobs-api", "cronjobs-worker"}
    run_env = _run_env()
    assert run_env["API"] == api and run_env["ADMIN_TOKEN"] == admin_token
    # Made-up local secrets: the JWT secret and the httpRequest signing secret.
    assert run_env["CRON_JWT_SECRET"].startswith("dev-")
    assert run_env["CRON_HTTP_SIGNING_SECRET"].startswith("dev-")
    assert len(run_env["CRON_HTTP_SIGNING_SECRET"]) > 32
    assert (RUN_ENV.stat().st_mode & 0o777) == 0o600

    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=api, headers=headers, timeout=5.0) as client:
        # `allow`: under the default `skip`, a run-now claimed a few ms after a slot's run started
        # is rightly skipped ("the previous run is still active"), and this test would wait forever.
        body = {
            "name": "stack-check",
            "type": "noop",
            "cron": "*/2 * * * * *",
            "payload": {},
            "overlapPolicy": "allow",
        }
        created = client.post("/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        queued = client.post(f"/jobs/{job_id}/run-now")
        assert queued.status_code == 202, queued.text

        seen: list[dict[str, object]] = []

        def succeeded_triggers() -> set[str] | None:
            answer = client.get(f"/jobs/{job_id}/runs")
            assert answer.status_code == 200, answer.text
            seen[:] = answer.json()["items"]
            triggers = {str(run["trigger"]) for run in seen if run["status"] == "succeeded"}
            return triggers if {"manual", "schedule"} <= triggers else None

        try:
            wait_for(
                succeeded_triggers,
                RUN_TIMEOUT,
                "a manual and a scheduled run to succeed",
                interval=RUN_POLL_SECONDS,
            )
        except AssertionError as timeout:
            pytest.fail(
                f"{timeout}\nruns: {seen}\njob: {client.get(f'/jobs/{job_id}').text}\n"
                f"{stack.diagnostics()}"
            )

    stopping = time.monotonic()
    stack.process.send_signal(signal.SIGINT)
    try:
        status = stack.process.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stack did not stop within {GRACE_SECONDS} s\n{stack.diagnostics()}")
    # run_local exits 0 only if the API and the worker exited 0 themselves.
    assert status == 0, stack.diagnostics()
    assert "exited with status" not in stack.output() and "killing" not in stack.output()
    assert "http_signing_secret.default" not in stack.output() + stack.diagnostics()
    assert not RUN_ENV.exists()
    assert not [name for name, pid in pids.items() if _alive(pid)]
    assert time.monotonic() - stopping < GRACE_SECONDS
    assert time.monotonic() - started < 40
