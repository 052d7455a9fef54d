"""Helpers for the API's HTTP tests: an authenticated client wrapper and database snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from shared.db import JOBS, REPORTS, RUNS, Database
from shared.settings import Settings
from shared.tokens import mint_token

BASE = "/api/cron"
ALICE = "alice-7c1e"
BOB = "bob-52d9"
ROOT = "root-a0b4"


def echo_job(name: str = "echo job", **fields: Any) -> dict[str, Any]:
    """A valid create body of the non-admin test type."""
    return {
        "name": name,
        "type": "echo",
        "cron": "*/5 * * * *",
        "payload": {"message": "hello"},
        **fields,
    }


def noop_job(name: str = "noop job", **fields: Any) -> dict[str, Any]:
    """A valid create body of the admin-only `noop` type."""
    return {"name": name, "type": "noop", "cron": "*/2 * * * * *", "payload": {}, **fields}


@dataclass
class Api:
    """An httpx client on the app plus the settings and database it uses."""

    http: httpx.AsyncClient
    settings: Settings
    db: Database

    def token(self, sub: str, admin: bool = False, **kwargs: Any) -> str:
        """A valid token for `sub`."""
        return mint_token(self.settings, sub, ["admin"] if admin else [], **kwargs)

    def auth(self, sub: str, admin: bool = False) -> dict[str, str]:
        """Authorization header for `sub`."""
        return {"Authorization": f"Bearer {self.token(sub, admin)}"}

    async def request(
        self, method: str, path: str, sub: str | None = ALICE, admin: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """A request to BASE + path as `sub` (None: without a token)."""
        headers = dict(kwargs.pop("headers", {}))
        if sub is not None:
            headers = {**self.auth(sub, admin), **headers}
        return await self.http.request(method, BASE + path, headers=headers, **kwargs)

    async def create(
        self, body: dict[str, Any], sub: str = ALICE, admin: bool = False
    ) -> dict[str, Any]:
        """Create a job; assert 201; return its JSON."""
        response = await self.request("POST", "/jobs", sub, admin, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


def field_errors(response: httpx.Response) -> dict[str, str]:
    """The `errors` of an error response as {field: message}."""
    body = response.json()
    assert set(body) == {"status", "title", "detail", "errors"}, body
    assert body["status"] == response.status_code
    return {error["field"]: error["message"] for error in body["errors"]}


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every document of the collections the API writes, in `_id` order."""
    return {name: await db[name].find().sort("_id", 1).to_list() for name in (JOBS, RUNS, REPORTS)}
