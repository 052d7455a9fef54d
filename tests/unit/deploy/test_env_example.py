""".env.example lists every setting with its real default, and its active values load."""

from __future__ import annotations

import re

from shared.settings import Settings, load_settings
from tests.unit.deploy.support import ROOT
from tools.settings_table import default_text, env_name

# `CRON_X=value` (active) or `# CRON_X=value` (documented default).
LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>CRON_[A-Z0-9_]+)=(?P<value>.*)$")
DESCRIBED_DEFAULTS = {"CRON_WORKER_NAME"}  # computed at start-up; the file leaves it empty


def _entries() -> list[tuple[bool, str, str]]:
    entries = []
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
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


def test_active_values_load_and_secrets_are_placeholders() -> None:
    active = {name: value for is_active, name, value in _entries() if is_active}
    assert set(active) == {"CRON_JWT_SECRET", "CRON_HTTP_SIGNING_SECRET"}
    assert all(value.startswith("replace-with-") for value in active.values())
    settings = load_settings(active)
    assert settings.jwt_secret is not None
