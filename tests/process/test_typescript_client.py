"""A generated TypeScript client type-checks and works: openapi-typescript + tsc + node.

The npm packages are pinned in clients/typescript/package-lock.json and installed with `npm ci`
into its git-ignored node_modules/ (`make client-deps`; done here too when missing or stale).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from shared.settings import load_settings
from tests.process.stack import ROOT, running_stack
from tests.support import TEST_JWT_SECRET

pytestmark = pytest.mark.process

CLIENT = ROOT / "clients" / "typescript"
NODE_BIN = CLIENT / "node_modules" / ".bin"
NPM_TIMEOUT = 300.0
TOOL_TIMEOUT = 120.0
CLIENT_TIMEOUT = 90.0
# Defaults do not make request fields required (the server fills them in).
DEFAULTS_OPTIONAL = "--default-non-nullable=false"


def _tool(*argv: str, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(argv), cwd=CLIENT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done


BACKEND_URL = "http://127.0.0.1:9/"


def _ensure_packages() -> None:
    npm = shutil.which("npm")
    assert npm, "npm is not installed (Node.js 20+ is needed for the client check)"
    installed = CLIENT / "node_modules" / ".package-lock.json"
    lock = CLIENT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        _tool(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", timeout=NPM_TIMEOUT)


def test_generated_types_check_and_the_client_runs_against_the_stack(tmp_path: Path) -> None:
    _ensure_packages()
    # The client creates a relative-URL httpRequest job, which needs the operator's backend; a
    # loopback discard port keeps any run of it on this machine.
    with running_stack(tmp_path, CRON_HTTP_BASE_URL=BACKEND_URL) as stack:
        stack.wait_until_ready()
        api = stack.printed("API")
        assert api
        document = httpx.get(f"{api}/schema/openapi.json", timeout=10.0)
        assert document.status_code == 200
        spec = tmp_path / "openapi.json"
        spec.write_bytes(document.content)
        generated = CLIENT / "generated" / "api.ts"
        _tool(
            str(NODE_BIN / "openapi-typescript"),
            str(spec),
            "-o",
            str(generated),
            DEFAULTS_OPTIONAL,
        )
        _tool(str(NODE_BIN / "tsc"), "-p", ".")
        environ = {
            **{key: value for key, value in os.environ.items() if not key.startswith("CRON_")},
            "API": api,
            "USER_TOKEN": stack.printed("USER_TOKEN") or "",
            "ADMIN_TOKEN": stack.printed("ADMIN_TOKEN") or "",
        }
        run = subprocess.run(
            ["node", str(CLIENT / "dist" / "src" / "client.js")],
            env=environ,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{stack.diagnostics()}"
        assert '"run":"succeeded"' in run.stdout
        for job_type in ("sendEmail", "httpRequest", "generateReport", "purgeSessions", "noop"):
            assert job_type in run.stdout


def test_tsc_refuses_a_payload_that_does_not_fit_its_type(tmp_path: Path) -> None:
    """The check can fail: an untyped (`object`) payload would make the expected error vanish."""
    _ensure_packages()
    from litestar.testing import TestClient

    app = create_app(load_settings({}, jwt_secret=TEST_JWT_SECRET))
    with TestClient(app) as client:
        document = client.get("/api/cron/schema/openapi.json").json()
    # The document as it would be without the unions: every payload just "an object".
    for name in ("JobCreate", "JobReplace", "JobOut"):
        variant = document["components"]["schemas"][f"{name}Noop"]
        variant["properties"]["type"] = {"type": "string"}
        variant["properties"]["payload"] = {"type": "object", "additionalProperties": {}}
        document["components"]["schemas"][name] = variant
    spec = tmp_path / "untyped.json"
    spec.write_text(json.dumps(document))
    work = tmp_path / "check"
    shutil.copytree(CLIENT / "src", work / "src")
    (work / "tsconfig.json").write_text((CLIENT / "tsconfig.json").read_text())
    os.symlink(CLIENT / "node_modules", work / "node_modules")
    generated = work / "generated" / "api.ts"
    _tool(str(NODE_BIN / "openapi-typescript"), str(spec), "-o", str(generated), DEFAULTS_OPTIONAL)
    done = subprocess.run(
        [str(NODE_BIN / "tsc"), "-p", str(work), "--noEmit"],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    assert done.returncode != 0
    assert "Unused '@ts-expect-error' directive" in done.stdout, done.stdout
