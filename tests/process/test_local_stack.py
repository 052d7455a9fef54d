"""`make run`'s stack as a user meets it: start, create a job over HTTP, watch it run, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from shared.settings import Settings
from tests.support import external_mongodb_uri

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
RUN_TIMEOUT = 12.0
GRACE_SECONDS = float(Settings.model_fields["shutdown_grace_seconds"].default)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Stack:
    """`python -m tools.run_local` with its output in files (no pipe to fill up)."""

    def __init__(self, tmp_path: Path) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}
        env["CRON_API_PORT"] = str(_free_port())
        env["CRON_METRICS_PORT"] = str(_free_port())  # the worker's /metrics, never a fixed port
        env["CRON_DB_NAME"] = f"cronjobs_stack_{uuid.uuid4().hex[:8]}"
        external = external_mongodb_uri()
        if external:
            env["CRON_MONGODB_URI"] = external
        self.db_name = env["CRON_DB_NAME"]
        self.external_uri = external
        self.stdout_path = tmp_path / "stack.out"
        self.stderr_path = tmp_path / "stack.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.run_local"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def output(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def printed(self, name: str) -> str | None:
        match = re.search(rf"^export {name}=(\S+)$", self.output(), re.MULTILINE)
        return match.group(1) if match else None

    def pids(self) -> dict[str, int]:
        match = re.search(r"^processes: (.+)$", self.output(), re.MULTILINE)
        assert match, self.output()
        return {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}

    def diagnostics(self) -> str:
        errors = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return f"--- stdout\n{self.output()}\n--- stderr (tail)\n{errors[-4000:]}"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path)
    try:
        yield stack
    finally:
        if stack.process.poll() is None:
            os.kill(stack.process.pid, signal.SIGTERM)
            try:
                stack.process.wait(GRACE_SECONDS + 10)
            except subprocess.TimeoutExpired:
                stack.process.kill()
                stack.process.wait()
        if stack.external_uri:
            client: MongoClient[dict[str, Any]] = MongoClient(stack.external_uri)
            client.drop_database(stack.db_name)
            client.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_local_stack_runs_a_job_and_stops_cleanly_on_sigint(stack: Stack) -> None:
    started = time.monotonic()

    def ready() -> bool:
        assert stack.process.poll() is None, stack.diagnostics()
        return stack.printed("ADMIN_TOKEN") is not None

    _wait_for(ready, START_TIMEOUT, "the stack's banner")
    api, admin_token = stack.printed("API"), stack.printed("ADMIN_TOKEN")
    assert api and admin_token and stack.printed("USER_TOKEN")
    assert "curl" in stack.output() and f"{api}/schema" in stack.output()
    pids = stack.pids()
    assert set(pids) >= {"cronjobs-api", "cronjobs-worker"}

    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=api, headers=headers, timeout=5.0) as client:
        body = {"name": "stack-check", "type": "noop", "cron": "*/2 * * * * *", "payload": {}}
        created = client.post("/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        queued = client.post(f"/jobs/{job_id}/run-now")
        assert queued.status_code == 202, queued.text

        def succeeded_triggers() -> set[str] | None:
            answer = client.get(f"/jobs/{job_id}/runs")
            assert answer.status_code == 200, answer.text
            runs = answer.json()["items"]
            triggers = {run["trigger"] for run in runs if run["status"] == "succeeded"}
            return triggers if {"manual", "schedule"} <= triggers else None

        _wait_for(succeeded_triggers, RUN_TIMEOUT, "a manual and a scheduled run to succeed")

    stopping = time.monotonic()
    stack.process.send_signal(signal.SIGINT)
    try:
        status = stack.process.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stack did not stop within {GRACE_SECONDS} s\n{stack.diagnostics()}")
    # run_local exits 0 only if the API and the worker exited 0 themselves.
    assert status == 0, stack.diagnostics()
    assert "exited with status" not in stack.output() and "killing" not in stack.output()
    assert not [name for name, pid in pids.items() if _alive(pid)]
    assert time.monotonic() - stopping < GRACE_SECONDS
    assert time.monotonic() - started < 40
