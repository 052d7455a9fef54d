"""The served OpenAPI document and its interactive page.

The document types each job's `payload` by its `type`: the job bodies become unions
discriminated on `type`, so generated clients get typed payloads. The page is Swagger UI from
the pinned `swagger-ui-bundle-v2` package, served by the app itself: it works offline.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any, Final

from litestar import Request, Router
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from shared.registry import JobType, JobTypeRegistry

ASSETS_PATH: Final = "/assets"
# Bodies whose `payload` depends on `type`: each becomes a union of one variant per type.
DISCRIMINATED_BODIES: Final = ("JobCreate", "JobReplace", "JobOut")
_DEFS_REF: Final = re.compile(r"^#/\$defs/(.+)$")


def payload_component(job_type: JobType) -> str:
    """`sendEmail` -> `SendEmailPayload`."""
    return f"{job_type.name[:1].upper()}{job_type.name[1:]}Payload"


def _variant_name(body: str, job_type: JobType) -> str:
    return f"{body}{payload_component(job_type).removesuffix('Payload')}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _relocated(schema: Any, prefix: str) -> Any:
    """A pydantic schema with its `#/$defs/X` references pointing at `<prefix>X` components."""
    if isinstance(schema, dict):
        result = {}
        for key, value in schema.items():
            match = _DEFS_REF.match(value) if key == "$ref" and isinstance(value, str) else None
            result[key] = (
                _ref(prefix + match.group(1))["$ref"] if match else _relocated(value, prefix)
            )
        return result
    if isinstance(schema, list):
        return [_relocated(item, prefix) for item in schema]
    return schema


def _payload_components(job_type: JobType) -> Iterator[tuple[str, dict[str, Any]]]:
    schema = job_type.json_schema()
    name = payload_component(job_type)
    for definition, body in schema.pop("$defs", {}).items():
        yield f"{name}_{definition}", _relocated(body, f"{name}_")
    yield name, _relocated(schema, f"{name}_")


def _variant(
    base: dict[str, Any], body: str, job_type: JobType, payload: dict[str, Any]
) -> dict[str, Any]:
    variant = copy.deepcopy(base)
    properties = variant.setdefault("properties", {})
    properties["type"] = {
        **properties.get("type", {}),
        "type": "string",
        "enum": [job_type.name],
        "examples": [job_type.name],
    }
    properties["payload"] = {
        **_ref(payload_component(job_type)),
        "description": payload.get("description", f"The `{job_type.name}` payload."),
    }
    if payload.get("required"):  # an empty default payload would be refused
        required = variant.setdefault("required", [])
        required.extend(name for name in ("type", "payload") if name not in required)
    variant["title"] = _variant_name(body, job_type)
    return variant


def with_payload_unions(document: dict[str, Any], registry: JobTypeRegistry) -> dict[str, Any]:
    """A copy of the OpenAPI document whose job bodies are unions discriminated on `type`."""
    result = copy.deepcopy(document)
    schemas: dict[str, Any] = result.setdefault("components", {}).setdefault("schemas", {})
    types = sorted(registry, key=lambda job_type: job_type.name)
    payloads: dict[str, dict[str, Any]] = {}
    for job_type in types:
        for name, schema in _payload_components(job_type):
            schemas[name] = schema
        payloads[job_type.name] = schemas[payload_component(job_type)]
    for body in DISCRIMINATED_BODIES:
        base = schemas.get(body)
        if base is None or not types:
            continue
        mapping = {}
        for job_type in types:
            name = _variant_name(body, job_type)
            schemas[name] = _variant(base, body, job_type, payloads[job_type.name])
            mapping[job_type.name] = _ref(name)["$ref"]
        schemas[body] = {
            "title": body,
            "description": base.get("description", ""),
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "type", "mapping": mapping},
        }
    patch = schemas.get("JobPatch", {}).get("properties", {})
    if "payload" in patch and types:
        patch["payload"] = {
            "description": "The payload of the job's (new) type.",
            "anyOf": [_ref(payload_component(job_type)) for job_type in types],
        }
    return result


class _Unions:
    """Computes the union document once per served document."""

    def __init__(self, registry: JobTypeRegistry) -> None:
        self.registry = registry
        self._source: dict[str, Any] | None = None
        self._document: dict[str, Any] = {}

    def __call__(self, document: dict[str, Any]) -> dict[str, Any]:
        if document is not self._source:
            self._source, self._document = document, with_payload_unions(document, self.registry)
        return self._document


class UnionJsonPlugin(JsonRenderPlugin):
    """`openapi.json` with the payload unions."""

    def __init__(self, unions: _Unions) -> None:
        super().__init__()
        self.unions = unions

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The JSON document."""
        return self.render_json(request, self.unions(openapi_schema))


class OfflineSwaggerPlugin(SwaggerRenderPlugin):
    """Swagger UI at the schema path, its JS and CSS served from the installed package."""

    def __init__(self, unions: _Unions, schema_path: str) -> None:
        assets = f"{schema_path}{ASSETS_PATH}"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            path=["/", "/swagger"],
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
        )
        self.unions = unions

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The HTML page (the document is inlined)."""
        return super().render(request, self.unions(openapi_schema))

    def receive_router(self, router: Router) -> None:
        """Serve the package's files under the schema path (public, like the page)."""
        router.register(
            create_static_files_router(
                path=ASSETS_PATH,
                directories=[swagger_ui_path],
                include_in_schema=False,
                name="swagger-ui-assets",
            )
        )


def render_plugins(registry: JobTypeRegistry, schema_path: str) -> list[Any]:
    """The page (default, at the schema path) and `openapi.json`."""
    unions = _Unions(registry)
    return [OfflineSwaggerPlugin(unions, schema_path), UnionJsonPlugin(unions)]
