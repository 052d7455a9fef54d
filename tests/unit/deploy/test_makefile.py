"""`make install` (run by `make run` and `make test`) announces each slow step before it runs."""

from __future__ import annotations

import re
import subprocess

from tests.unit.deploy.support import ROOT

SLOW_STEPS = (r"-m venv ", r"pip install .*-e ", r"ensure_installed\(\)", r"npm ci")


def _dry_run(target: str) -> list[str]:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Join continuation lines: one shell command per entry.
    return done.stdout.replace("\\\n", " ").splitlines()


def test_every_slow_install_step_is_announced_first() -> None:
    commands = _dry_run("install") + _dry_run("client-deps")
    announced = 0
    for index, command in enumerate(commands):
        if not command.startswith("echo ") and any(re.search(s, command) for s in SLOW_STEPS):
            before = commands[index - 1] if index else ""
            assert before.startswith("echo "), f"{command!r} runs without saying so first"
            announced += 1
    assert announced == len(SLOW_STEPS)


def test_pip_shows_no_progress_bars_but_the_step_says_how_long() -> None:
    commands = _dry_run("install")
    pip = next(command for command in commands if re.search(SLOW_STEPS[1], command))
    announcement = commands[commands.index(pip) - 1]
    assert "warm pip cache" in announcement and "cold" in announcement
