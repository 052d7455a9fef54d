"""Real `cronjobs-worker` subprocesses for process-level tests: bounded, always killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

WORKER_BIN = Path(sys.executable).with_name("cronjobs-worker")
# Short leases, heartbeats and grace so that process behaviour shows within seconds.
FAST_WORKER_ENV = {
    "CRON_LEASE_SECONDS": "3",
    "CRON_HEARTBEAT_SECONDS": "1",
    "CRON_SHUTDOWN_GRACE_SECONDS": "5",
    "CRON_POLL_INTERVAL_SECONDS": "1",
    "CRON_LOG_JSON": "true",
    "CRON_LOG_LEVEL": "INFO",
    # No fixed port (the default 9464) in tests: tests/process/test_metrics.py binds its own.
    "CRON_METRICS_PORT": "0",
}


class WorkerProcess:
    """One `cronjobs-worker` with its JSON log lines in a file (no pipe to fill up)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """Its CRON_WORKER_NAME."""
        return self.env["CRON_WORKER_NAME"]

    def start(self) -> WorkerProcess:
        """Start (or restart) the process; the log file is appended to."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(WORKER_BIN)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        """The running process id."""
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def send(self, number: signal.Signals) -> None:
        """Send a signal (SIGTERM, SIGINT, SIGKILL)."""
        assert self.process is not None
        self.process.send_signal(number)

    def wait(self, timeout: float) -> int:
        """Wait for the exit status (TimeoutExpired if it takes longer)."""
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Teardown: SIGKILL if still running, and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines skipped)."""
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        """Log lines whose `event` is `name`."""
        return [line for line in self.logs() if line.get("event") == name]

    def wait_for_event(self, name: str, within: float) -> dict[str, Any]:
        """The first log line `name`, waiting up to `within` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self.events(name)
            if found:
                return found[0]
            if not self.alive():
                break
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise AssertionError(f"{self.name}: no {name!r} log line within {within:g} s:\n{tail}")


SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture
def spawn_worker(mongo_uri: str, db_name: str, tmp_path: Path) -> Iterator[SpawnWorker]:
    """`spawn_worker("w1", CRON_X="y", ...)`: a started worker on the test's database."""
    spawned: list[WorkerProcess] = []
    base = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}

    def spawn(name: str = "worker-1", **env: str) -> WorkerProcess:
        environment = {
            **base,
            **FAST_WORKER_ENV,
            "CRON_MONGODB_URI": mongo_uri,
            "CRON_DB_NAME": db_name,
            "CRON_WORKER_NAME": name,
            **env,
        }
        worker = WorkerProcess(environment, tmp_path / f"{name}-{len(spawned)}.log")
        spawned.append(worker)
        return worker.start()

    yield spawn
    for worker in spawned:
        worker.stop()
