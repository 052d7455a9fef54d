"""docs/operations.md carries the current settings table and links what it promises."""

from __future__ import annotations

from shared.settings import Settings
from tests.unit.deploy.support import ROOT
from tools.settings_table import END_MARKER, START_MARKER, env_name, markdown_table, replace_table

GUIDE = ROOT / "docs" / "operations.md"


def test_settings_table_matches_the_settings() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    start, end = text.index(START_MARKER), text.index(END_MARKER) + len(END_MARKER) + 1
    assert text[start:end] == markdown_table(), (
        "run: python -m tools.settings_table --write docs/operations.md"
    )


def test_table_lists_every_setting_once() -> None:
    table = markdown_table()
    for name in Settings.model_fields:
        assert table.count(f"| `{env_name(name)}` |") == 1


def test_replace_table_is_idempotent() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    stale = text.replace("| `CRON_DB_NAME` |", "| `CRON_OLD_NAME` |")
    assert replace_table(stale) == replace_table(text) == text
