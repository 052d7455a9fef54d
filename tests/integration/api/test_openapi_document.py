"""The OpenAPI document types payloads by `type`; the interactive page needs no CDN."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.api.helpers import Api


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


async def _document(api: Api) -> dict[str, Any]:
    response = await api.request("GET", "/schema/openapi.json", sub=None)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_job_bodies_are_unions_discriminated_on_type(api: Api) -> None:
    document = await _document(api)
    schemas = document["components"]["schemas"]
    types = (await api.request("GET", "/job-types")).json()["items"]
    names = {item["name"] for item in types}
    for body in ("JobCreate", "JobReplace", "JobOut"):
        union = schemas[body]
        assert union["discriminator"]["propertyName"] == "type"
        mapping = union["discriminator"]["mapping"]
        assert set(mapping) == names
        assert [entry["$ref"] for entry in union["oneOf"]] == list(mapping.values())
        for type_name, ref in mapping.items():
            variant = schemas[ref.rsplit("/", 1)[1]]
            assert variant["properties"]["type"]["enum"] == [type_name]
            payload = schemas[variant["properties"]["payload"]["$ref"].rsplit("/", 1)[1]]
            catalogue = next(item for item in types if item["name"] == type_name)
            assert payload.get("required") == catalogue["payloadSchema"].get("required")
    send_email = schemas["SendEmailPayload"]
    assert set(send_email["required"]) == {"to", "subject", "template"}
    assert "payload" in schemas["JobCreateSendEmail"]["required"]
    # Every reference resolves (pydantic's $defs were moved into components).
    prefix = "#/components/schemas/"
    for ref in _refs(document):
        assert ref.startswith(prefix) and ref.removeprefix(prefix) in schemas, ref


async def test_the_interactive_page_loads_only_its_own_assets(api: Api) -> None:
    page = await api.request("GET", "/schema", sub=None)
    assert page.status_code == 200
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert sources, page.text[:500]
    assert any(source.endswith("swagger-ui-bundle.js") for source in sources)
    for source in sources:
        assert source.startswith("/api/cron/schema/assets/"), source
        asset = await api.http.get(source)
        assert asset.status_code == 200 and len(asset.content) > 500, source
    assert "JobCreateSendEmail" in page.text  # the inlined document has the unions
