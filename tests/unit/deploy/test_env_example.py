""".env.example lists every setting with its real default; its placeholders are refused."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.settings import PLACEHOLDER_PREFIX, Settings, SettingsError, load_settings
from tests.unit.deploy.support import ROOT
from tools.settings_table import default_text, env_name

# `CRON_X=value` (active) or `# CRON_X=value` (documented default).
LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>CRON_[A-Z0-9_]+)=(?P<value>.*)$")
ENV_EXAMPLE = ROOT / ".env.example"
DESCRIBED_DEFAULTS = {"CRON_WORKER_NAME"}  # computed at start-up; the file leaves it empty


def _entries() -> list[tuple[bool, str, str]]:
    entries = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line)
        if match:
            entries.append((match["comment"] is None, match["name"], match["value"]))
    return entries


def test_every_setting_appears_exactly_once_and_nothing_else() -> None:
    names = [name for _, name, _ in _entries()]
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert set(names) == {env_name(field) for field in Settings.model_fields}


def test_commented_defaults_match_the_settings() -> None:
    fields = {env_name(name): field for name, field in Settings.model_fields.items()}
    for active, name, value in _entries():
        if not active and name not in DESCRIBED_DEFAULTS:
            assert value == default_text(fields[name]), name


def test_active_values_are_placeholders_the_services_refuse() -> None:
    active = {name: value for is_active, name, value in _entries() if is_active}
    assert set(active) == {"CRON_HTTP_SIGNING_SECRET"}
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert f"starts with `{PLACEHOLDER_PREFIX}`" in text  # the prefix is documented
    for name, value in active.items():
        assert value.startswith(PLACEHOLDER_PREFIX), name
        with pytest.raises(SettingsError, match=f"{name}: .*placeholder"):
            load_settings({name: value})
    # Replaced by real values, the file loads.
    load_settings({name: "an-operator-chosen-value-" + "x" * 20 for name in active})


def test_no_token_key_is_active() -> None:
    # An operator sets exactly the key their auth server uses; an example key would stay
    # accepted next to it.
    commented = {name for is_active, name, _ in _entries() if not is_active}
    assert {"CRON_JWT_SECRET", "CRON_JWT_PUBLIC_KEY"} <= commented


def test_the_file_is_valid_sh() -> None:
    # supervisor sources it with `set -a && . file`: a line sh cannot parse stops the start.
    script = f'set -a && . "{ENV_EXAMPLE}" && printf %s "$CRON_HTTP_SIGNING_SECRET"'
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(PLACEHOLDER_PREFIX)


def test_a_single_quoted_one_line_pem_survives_sh_and_loads(tmp_path: Path) -> None:
    # The form the file documents for CRON_JWT_PUBLIC_KEY, read the way supervisor reads it.
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    env_file = tmp_path / "cronjobs.env"
    one_line = pem.strip().replace("\n", "\\n")
    env_file.write_text(f"CRON_JWT_PUBLIC_KEY='{one_line}'\n", encoding="utf-8")
    script = f'set -a && . "{env_file}" && printf %s "$CRON_JWT_PUBLIC_KEY"'
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout == one_line
    assert load_settings({"CRON_JWT_PUBLIC_KEY": result.stdout}).jwt_public_key == pem.strip()
