"""A browser-like httpx session on the dashboard: cookies kept, CSRF token read from the page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from shared.settings import Settings
from shared.tokens import mint_token

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


def csrf_of(html: str) -> str:
    """The CSRF token a page carries."""
    found = _CSRF_META.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


@dataclass
class DashboardSession:
    """One browser: its cookie jar is the httpx client's."""

    http: httpx.AsyncClient
    settings: Settings
    csrf: str = ""

    def token(self, sub: str, roles: list[str] | None = None, ttl: int = 3600) -> str:
        """A bearer token signed with the test secret."""
        return mint_token(self.settings, sub, roles=roles or [], ttl_seconds=ttl)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET, remembering the page's CSRF token."""
        response = await self.http.get(path, **kwargs)
        if "text/html" in response.headers.get("content-type", "") and 'name="csrf-token"' in (
            response.text
        ):
            self.csrf = csrf_of(response.text)
        return response

    async def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """POST a form with the CSRF token the last page carried."""
        form = {"_csrf_token": self.csrf, **(data or {})}
        return await self.http.post(path, data=form, **kwargs)

    async def sign_in(self, sub: str = "ops-admin", roles: list[str] | None = None) -> Any:
        """Sign in through the form, as a browser would."""
        await self.get("/dashboard/sign-in")
        token = self.token(sub, ["admin"] if roles is None else roles)
        return await self.post("/dashboard/sign-in", {"token": token, "next": "/dashboard/"})
