"""`make run`'s stack (`python -m tools.run_local`) in a test: random port, own database."""

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from shared.settings import Settings
from tests.support import external_mongodb_uri

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
GRACE_SECONDS = float(Settings.model_fields["shutdown_grace_seconds"].default)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """The first truthy value of `condition()`, polled every `interval` until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Stack:
    """`python -m tools.run_local` with its output in files (no pipe to fill up)."""

    def __init__(self, tmp_path: Path, **environ: str) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}
        env["CRON_API_PORT"] = str(free_port())
        env["CRON_METRICS_PORT"] = str(free_port())  # the worker's /metrics, never a fixed port
        env["CRON_DB_NAME"] = f"cronjobs_stack_{uuid.uuid4().hex[:8]}"
        external = external_mongodb_uri()
        if external:
            env["CRON_MONGODB_URI"] = external
        env.update(environ)
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
        """What it printed so far."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def printed(self, name: str) -> str | None:
        """The value of an `export NAME=value` line of the banner."""
        match = re.search(rf"^export {name}='?([^'\s]+)'?$", self.output(), re.MULTILINE)
        return match.group(1) if match else None

    def pids(self) -> dict[str, int]:
        """The banner's `processes:` line."""
        match = re.search(r"^processes: (.+)$", self.output(), re.MULTILINE)
        assert match, self.output()
        return {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}

    def diagnostics(self) -> str:
        """Output for an assertion message."""
        errors = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return f"--- stdout\n{self.output()}\n--- stderr (tail)\n{errors[-4000:]}"

    def wait_until_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the banner (with the admin token) is printed; fails if the stack exits."""

        def ready() -> bool:
            assert self.process.poll() is None, self.diagnostics()
            return self.printed("ADMIN_TOKEN") is not None

        wait_for(ready, timeout, "the stack's banner")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; drops an external test database."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(GRACE_SECONDS + 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.external_uri:
            client: MongoClient[dict[str, Any]] = MongoClient(self.external_uri)
            client.drop_database(self.db_name)
            client.close()


@contextmanager
def running_stack(tmp_path: Path, **environ: str) -> Iterator[Stack]:
    """A started stack, always stopped afterwards."""
    stack = Stack(tmp_path, **environ)
    try:
        yield stack
    finally:
        stack.stop()
