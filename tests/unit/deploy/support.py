"""Paths and small parsers the deployment-file tests share."""

from __future__ import annotations

import tomllib
from pathlib import Path

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
SYSTEMD_DIR = ROOT / "deploy" / "systemd"
SUPERVISOR_CONF = ROOT / "deploy" / "supervisor" / "cronjobs.conf"
DEFAULT_GRACE_SECONDS = float(Settings.model_fields["shutdown_grace_seconds"].default)


def console_scripts() -> dict[str, str]:
    """`[project.scripts]` of pyproject.toml: name -> "module:function"."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        return dict(tomllib.load(file)["project"]["scripts"])


def seconds(text: str) -> float:
    """Parse `40`, `40s`, `1m30s` or `1min` (the forms compose and systemd use) into seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total, number, unit = 0.0, "", ""
    for char in text.strip().replace(" ", "") + "\0":
        if char.isdigit() or char == ".":
            if unit:
                total += float(number) * units[unit]
                number, unit = "", ""
            number += char
        elif char.isalpha():
            unit += char
        else:
            total += float(number) * units[unit or "s"]
    return total
