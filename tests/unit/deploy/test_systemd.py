"""systemd units: required keys (parsed here) and `systemd-analyze verify` where it exists."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.deploy.support import DEFAULT_GRACE_SECONDS, SYSTEMD_DIR, console_scripts, seconds

UNITS = {"cronjobs-api.service": "cronjobs-api", "cronjobs-worker@.service": "cronjobs-worker"}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
}


def _parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (systemd allows repeated keys, so configparser cannot)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: key outside a section: {line}"
        assert "=" in line and not line.endswith("\\"), f"{path.name}: unexpected line {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize(("unit", "script"), UNITS.items())
def test_unit_runs_the_console_script_as_a_dedicated_user(unit: str, script: str) -> None:
    service = _parse_unit(SYSTEMD_DIR / unit)["Service"]
    assert script in console_scripts()
    assert service["ExecStart"] == [f"/opt/cronjobs/venv/bin/{script}"]
    assert service["User"] == ["cronjobs"] and service["Group"] == ["cronjobs"]
    assert service["EnvironmentFile"] == ["/etc/cronjobs/cronjobs.env"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert seconds(service["TimeoutStopSec"][0]) > DEFAULT_GRACE_SECONDS + 5
    for key, value in HARDENING.items():
        assert service.get(key) == [value], key
    assert _parse_unit(SYSTEMD_DIR / unit)["Install"]["WantedBy"] == ["multi-user.target"]


def test_worker_instances_get_distinct_names() -> None:
    service = _parse_unit(SYSTEMD_DIR / "cronjobs-worker@.service")["Service"]
    assert service["Environment"] == ["CRON_WORKER_NAME=%H-%i", "CRON_METRICS_PORT=946%i"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
@pytest.mark.parametrize("unit", ["cronjobs-api.service", "cronjobs-worker@1.service"])
def test_systemd_analyze_verify_reports_nothing(unit: str, tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point it at this checkout's virtualenv.
    venv_bin = str(Path(sys.executable).parent) + "/"
    for source in SYSTEMD_DIR.glob("*.service"):
        text = source.read_text(encoding="utf-8").replace("/opt/cronjobs/venv/bin/", venv_bin)
        (tmp_path / source.name).write_text(text.replace("=/opt/cronjobs\n", "=/\n"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys or bad values are warnings with exit status 0: any output is a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
