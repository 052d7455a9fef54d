"""Email templates (shipped ones plus `CRON_TEMPLATES_DIR`), rendered in a Jinja2 sandbox."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

SHIPPED_DIR = Path(__file__).resolve().parent / "templates"
TEXT_SUFFIX = ".txt.j2"
HTML_SUFFIX = ".html.j2"
SCHEMA_SUFFIX = ".schema.json"
# For a template shipped without `<name>.schema.json`: any object (the render check still runs).
UNDESCRIBED_PARAMS: dict[str, Any] = {
    "type": "object",
    "description": "This template ships no parameter schema; see its author's notes.",
}
# Names start with a letter or digit; `_layout` and friends are partials, not offered.
TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_LINK_SCHEME = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)
# What a template may raise on odd params (besides jinja2's own errors).
_RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError)


class TemplateRenderError(ValueError):
    """A template is missing or cannot be rendered with the given params (one-line message)."""


@dataclass(frozen=True)
class RenderedEmail:
    """Both bodies of one message."""

    text: str
    html: str


def search_path(templates_dir: str | None) -> list[Path]:
    """Folders searched in order: the operator's folder (may override), then the shipped one."""
    folders = [Path(templates_dir)] if templates_dir else []
    return [*folders, SHIPPED_DIR]


def available_templates(templates_dir: str | None) -> list[str]:
    """Names that have both a text (`<name>.txt.j2`) and an HTML (`<name>.html.j2`) variant."""
    found: dict[str, set[str]] = {}
    for folder in search_path(templates_dir):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            for suffix in (TEXT_SUFFIX, HTML_SUFFIX):
                name = path.name.removesuffix(suffix)
                if path.name.endswith(suffix) and TEMPLATE_NAME.fullmatch(name):
                    found.setdefault(name, set()).add(suffix)
    return sorted(name for name, suffixes in found.items() if len(suffixes) == 2)


def params_schema(templates_dir: str | None, name: str) -> dict[str, Any]:
    """The JSON Schema of a template's params: `<name>.schema.json` beside it, first found."""
    for folder in search_path(templates_dir):
        path = folder / f"{name}{SCHEMA_SUFFIX}"
        if path.is_file():
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(schema, dict):
                return schema
    return dict(UNDESCRIBED_PARAMS)


def params_schemas(templates_dir: str | None) -> dict[str, dict[str, Any]]:
    """Every available template's params schema, by name."""
    return {name: params_schema(templates_dir, name) for name in available_templates(templates_dir)}


def link(value: Any) -> str:
    """Template filter for hrefs: http(s) and mailto URLs pass, anything else (javascript:) -> #."""
    text = str(value).strip()
    return text if _LINK_SCHEME.match(text) else "#"


@lru_cache(maxsize=8)
def _environment(templates_dir: str | None, html: bool) -> SandboxedEnvironment:
    environment = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(path) for path in search_path(templates_dir)]),
        # HTML escapes every value; plain text must stay verbatim (no &amp; in a text mail).
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["link"] = link
    return environment


def render(templates_dir: str | None, name: str, params: dict[str, Any]) -> RenderedEmail:
    """Render both variants of `name` with `params` as variables; raise TemplateRenderError."""
    if not TEMPLATE_NAME.fullmatch(name):
        raise TemplateRenderError(f"template {name!r} is not a valid template name")
    bodies: list[str] = []
    for suffix, html in ((TEXT_SUFFIX, False), (HTML_SUFFIX, True)):
        try:
            template = _environment(templates_dir, html).get_template(name + suffix)
        except jinja2.TemplateNotFound:
            raise TemplateRenderError(f"template {name!r} has no {suffix} variant") from None
        except _RENDER_ERRORS as error:
            raise TemplateRenderError(f"template {name!r}: {_one_line(error)}") from None
        try:
            bodies.append(template.render(params))
        except _RENDER_ERRORS as error:
            raise TemplateRenderError(f"template {name!r}: {_one_line(error)}") from None
    return RenderedEmail(text=bodies[0], html=bodies[1])


def _one_line(error: Exception) -> str:
    message = (getattr(error, "message", None) or str(error)).strip()
    return message.splitlines()[0] if message else type(error).__name__
