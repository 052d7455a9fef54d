"""The commands behave like commands: `--help` starts nothing, a busy port is one line + exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import TEST_JWT_SECRET

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Generous under load: these commands start no server, so they only pay for imports.
COMMAND_TIMEOUT = 60.0


def _environment(**values: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}
    return {**base, "CRON_JWT_SECRET": TEST_JWT_SECRET, **values}


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something listens on for the duration of the test."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", ["cronjobs-api", "cronjobs-worker", "cronjobs"])
def test_help_prints_usage_and_starts_nothing(command: str) -> None:
    port = _unused_port()
    # An unreachable database: a command that started anything would hang or complain.
    environ = _environment(
        CRON_API_PORT=str(port), CRON_MONGODB_URI="mongodb://127.0.0.1:1/?directConnection=true"
    )
    done = subprocess.run(
        [str(BIN / command), "--help"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {command}")
    assert done.stderr == ""
    with socket.socket() as probe:  # the API did not bind its port
        probe.bind(("127.0.0.1", port))


def _one_line_naming_the_port(stderr: str, port: int, prefix: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(prefix)
    assert f"port {port}" in lines[0] and "CRON_API_PORT" in lines[0]


def test_api_on_a_busy_port_says_so_in_one_line(busy_port: int) -> None:
    done = subprocess.run(
        [str(BIN / "cronjobs-api")],
        env=_environment(CRON_API_PORT=str(busy_port)),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    _one_line_naming_the_port(done.stderr, busy_port, "cronjobs-api: ")


def test_make_run_on_a_busy_port_stops_before_starting_anything(busy_port: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.run_local"],
        cwd=ROOT,
        env=_environment(CRON_API_PORT=str(busy_port)),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    _one_line_naming_the_port(done.stdout, busy_port, "run_local: ")
    assert "local MongoDB stand-in" not in done.stdout and done.stderr == ""
