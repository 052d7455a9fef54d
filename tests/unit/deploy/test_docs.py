"""The README carries what it promises: the current settings table and code that really runs."""

from __future__ import annotations

import inspect
import re

from shared.settings import Settings
from tests.integration.job_types import servers
from tests.unit.deploy.support import ROOT
from tools.settings_table import END_MARKER, START_MARKER, env_name, markdown_table, replace_table

README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "operations.md"


def test_settings_table_matches_the_settings() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(START_MARKER), text.index(END_MARKER) + len(END_MARKER) + 1
    assert text[start:end] == markdown_table(), (
        "run: python -m tools.settings_table --write README.md"
    )


def test_table_lists_every_setting_once() -> None:
    table = markdown_table()
    for name in Settings.model_fields:
        assert table.count(f"| `{env_name(name)}` |") == 1


def test_replace_table_is_idempotent() -> None:
    text = README.read_text(encoding="utf-8")
    stale = text.replace("| `CRON_DB_NAME` |", "| `CRON_OLD_NAME` |")
    assert replace_table(stale) == replace_table(text) == text


def test_the_signature_example_is_the_one_the_tests_use() -> None:
    """The README's receiver example is the function the HTTP test endpoint verifies with."""
    code = inspect.getsource(servers.verify)
    assert code in README.read_text(encoding="utf-8")


def test_known_differences_name_tests_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Known differences from MongoDB") :]
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", section)
    assert len(cited) >= 8
    for path, name in cited:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert not name or f"def {name}(" in source, f"{path}::{name} does not exist"


def test_the_guide_links_to_the_settings_table() -> None:
    assert "../README.md#configuration" in GUIDE.read_text(encoding="utf-8")


def test_the_readme_names_the_mongodb_version_compose_runs() -> None:
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    image = re.search(r"^\s+image: mongo:(\d+)", compose, re.MULTILINE)
    assert image, "docker-compose.yml has no mongo image"
    mentions = re.findall(r"MongoDB (\d+) replica set", README.read_text(encoding="utf-8"))
    assert mentions and set(mentions) == {image.group(1)}
