"""Server-side rendering: one autoescaping Jinja2 environment, HTML with strict headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import MediaType, Request, Response
from litestar.response import Redirect
from litestar.utils.scope.state import ScopeState

TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
# The pages load nothing from elsewhere and cannot be framed; no inline script is needed.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Payloads and report data are shown pretty-printed, and cut if huge.
JSON_PREVIEW_CHARS: Final = 20_000


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _in_zone(moment: datetime | None, zone: str) -> str:
    if moment is None:
        return "—"
    try:
        local = moment.astimezone(ZoneInfo(zone))
    except (KeyError, ValueError):
        return "—"
    return local.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%z)")


def _age(moment: datetime | None, now: datetime | None = None) -> str:
    """'12 s ago', '3 min ago', 'in 5 min'."""
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 90:
        text = f"{seconds:.0f} s"
    elif seconds < 5400:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 172_800:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{seconds / 86_400:.0f} d"
    return f"in {text}" if future else f"{text} ago"


def _pretty_json(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    if len(text) > JSON_PREVIEW_CHARS:
        return text[:JSON_PREVIEW_CHARS] + "\n… (cut)"
    return text


def _duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "—"
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    return f"{milliseconds / 1000:.1f} s"


def build_environment() -> Environment:
    """Every template is HTML: autoescape on for all of them, undefined names are errors."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        utc=_utc, in_zone=_in_zone, age=_age, pretty_json=_pretty_json, duration=_duration
    )
    return environment


ENVIRONMENT: Final = build_environment()


def csrf_token(request: Request[Any, Any, Any]) -> str:
    """The token the CSRF middleware set for this request (double-submitted by every form)."""
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


def see_other(target: str) -> Redirect:
    """303 to a dashboard path (after a POST, or to the sign-in page)."""
    return Redirect(target, status_code=303, headers=SECURITY_HEADERS)


def render(
    request: Request[Any, Any, Any],
    template: str,
    status: int = HTTPStatus.OK,
    **context: Any,
) -> Response[str]:
    """The template as an HTML response; `admin`, `csrf_token`, `path` are always available."""
    user = request.scope.get("user")
    html = ENVIRONMENT.get_template(template).render(
        admin=getattr(user, "sub", None),
        csrf_token=csrf_token(request),
        path=request.url.path,
        now=datetime.now(UTC),
        **context,
    )
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=SECURITY_HEADERS)
