"""Real `cronjobs-api` processes for process tests: a free port each, always stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.settings import Settings
from shared.tokens import mint_token

API_BIN = Path(sys.executable).with_name("cronjobs-api")
# Start-up includes the interpreter, the app and the database indexes; generous on a busy box.
START_TIMEOUT = 60.0
BASE = "/api/cron"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ApiProcess:
    """One `cronjobs-api` on a free loopback port, its output in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(API_BIN)],
                env={**env, "CRON_API_PORT": str(self.port)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise AssertionError(f"cronjobs-api on {self.port} not ready:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def auth(settings: Settings, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, sub, [])}"}


def job_body(name: str) -> dict[str, object]:
    return {
        "name": name,
        "type": "generateReport",
        "cron": "0 6 * * *",
        "payload": {"type": "jobRuns", "period": "daily"},
    }
