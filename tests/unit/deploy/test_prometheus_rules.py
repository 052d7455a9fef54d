"""deploy/prometheus/alerts.yml: valid for promtool, unit-tested, every alert with a runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.unit.deploy.support import ROOT

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"


def _promtool() -> str:
    found = shutil.which("promtool")
    # Installed by tools/system_deps.sh (Debian's prometheus package); never skipped.
    assert found, "promtool is missing: run `make system-deps` (Debian package prometheus)"
    return found


def _alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *arguments],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_promtool_checks_the_rules() -> None:
    result = _run("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = _run("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for alert in _alerts():
        name = alert["alert"]
        own = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in own), f"{name} never fires in a test"
        assert any(not case["exp_alerts"] for case in own), f"{name} never stays silent"


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: str(alert["alert"]))
def test_each_alert_has_a_severity_and_a_runbook_entry(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in {"critical", "warning"}
    runbook = alert["annotations"]["runbook"]
    anchor = runbook.partition("#")[2]
    assert runbook == f"docs/operations.md#{alert['alert'].lower()}" and anchor
    headings = re.findall(r"^#+ (.+)$", OPERATIONS.read_text(encoding="utf-8"), re.MULTILINE)
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings
    }
    assert anchor in anchors, f"docs/operations.md has no heading for #{anchor}"
