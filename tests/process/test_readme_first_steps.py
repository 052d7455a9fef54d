"""The README's first steps, run as written in a second shell against a real `make run` stack."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.process.stack import ROOT, running_stack

pytestmark = pytest.mark.process

README = ROOT / "README.md"
START, END = "<!-- first-steps:start -->", "<!-- first-steps:end -->"
# Every block together: a token, four writes, a run the worker must finish, a delete.
SCRIPT_TIMEOUT = 120.0


def first_steps() -> list[str]:
    """The runnable `sh` blocks between the first-steps markers, in order."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(START) : text.index(END)]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 4, "the first-steps section lost its shell blocks"
    return blocks


def test_the_blocks_cover_the_whole_path() -> None:
    script = "\n".join(first_steps())
    for step in (
        ". .local/run.env",
        "make token SUB=",
        "JOB_ID=$(",
        '"$API/jobs"',
        "/run-now",
        "/runs",
        "If-Match: $ETAG",
        '{"enabled": false}',
        "-X DELETE",
    ):
        assert step in script, step


def test_readme_first_steps_run_verbatim(tmp_path: Path) -> None:
    # A second shell: no CRON_* variables, no virtual environment on the PATH, not inside make.
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CRON_") and key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    }
    venv_bin = str(Path(os.environ.get("VIRTUAL_ENV", "/nonexistent")) / "bin")
    environ["PATH"] = os.pathsep.join(
        part for part in environ.get("PATH", "").split(os.pathsep) if part != venv_bin
    )
    environ.pop("VIRTUAL_ENV", None)
    script = "set -euo pipefail\n" + "\n".join(first_steps())
    with running_stack(tmp_path) as stack:
        stack.wait_until_ready()
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            check=False,
        )
        report = f"--- script output\n{done.stdout}\n{done.stderr}\n{stack.diagnostics()}"
        assert done.returncode == 0, report
        job_ids = re.findall(r"^([0-9a-f]{24})$", done.stdout, re.MULTILINE)
        assert len(job_ids) == 1, report
        assert '"status":"succeeded"' in done.stdout and '"trigger":"manual"' in done.stdout
        assert '"cron":"30 6 * * 1-5"' in done.stdout and '"status":"paused"' in done.stdout
        api, admin = stack.printed("API"), stack.printed("ADMIN_TOKEN")
        gone = httpx.get(
            f"{api}/jobs/{job_ids[0]}", headers={"Authorization": f"Bearer {admin}"}, timeout=10
        )
        assert gone.status_code == 404  # the last block deleted it
        kept = httpx.get(
            f"{api}/jobs/{job_ids[0]}/runs", headers={"Authorization": f"Bearer {admin}"}
        )
        assert kept.status_code == 200 and kept.json()["items"]  # history outlives the job
