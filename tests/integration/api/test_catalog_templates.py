"""`GET /job-types` tells, per sendEmail template, which params it needs (and they are right)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api.conftest import ApiFactory
from tests.integration.api.helpers import Api, field_errors


def _sample(schema: dict[str, Any]) -> Any:
    """The smallest value the schema accepts: required properties only, one array item."""
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _sample(properties[name]) for name in schema.get("required", [])}
    if kind == "array":
        return [_sample(schema["items"])]
    return "https://example.com/x" if schema.get("format") == "uri" else "text"


def _mail(template: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"mail {template} {sorted(params)}",
        "type": "sendEmail",
        "cron": "0 8 * * *",
        "payload": {"to": "a@example.com", "subject": "s", "template": template, "params": params},
    }


async def _templates(api: Api) -> dict[str, dict[str, Any]]:
    response = await api.request("GET", "/job-types")
    assert response.status_code == 200, response.text
    types = {item["name"]: item for item in response.json()["items"]}
    assert types["purgeSessions"]["templates"] is None
    return {item["name"]: item["paramsSchema"] for item in types["sendEmail"]["templates"]}


async def test_every_shipped_template_lists_its_params(api: Api) -> None:
    templates = await _templates(api)
    assert set(templates) == {"reminder", "digest", "report-ready"}
    assert templates["digest"]["required"] == ["items"]
    assert templates["digest"]["properties"]["items"]["items"]["required"] == ["title"]
    assert templates["reminder"]["required"] == ["title"]
    assert set(templates["reminder"]["properties"]) == {"title", "message", "dueAt", "url"}


async def test_the_schemas_match_what_the_templates_require(api: Api) -> None:
    for name, schema in (await _templates(api)).items():
        minimal = _sample(schema)
        assert (await api.request("POST", "/jobs", json=_mail(name, minimal))).status_code == 201
        for required in schema.get("required", []):
            lacking = {key: value for key, value in minimal.items() if key != required}
            response = await api.request("POST", "/jobs", json=_mail(name, lacking))
            assert response.status_code == 422, (name, required)
            assert required in field_errors(response)["payload.params"]


@pytest.mark.parametrize("with_schema", [True, False])
async def test_an_operators_template_without_a_schema_is_any_object(
    make_api: ApiFactory, tmp_path: Path, with_schema: bool
) -> None:
    (tmp_path / "welcome.txt.j2").write_text("Hi {{ first }}")
    (tmp_path / "welcome.html.j2").write_text("<p>Hi {{ first }}</p>")
    schema = {"type": "object", "properties": {"first": {"type": "string"}}, "required": ["first"]}
    if with_schema:
        (tmp_path / "welcome.schema.json").write_text(json.dumps(schema))
    api = await make_api(templates_dir=str(tmp_path))
    listed = (await _templates(api))["welcome"]
    if with_schema:
        assert listed == schema
    else:
        assert listed["type"] == "object" and "required" not in listed
