"""Schema-driven fuzzing (schemathesis) of the OpenAPI document against the app, in-process.

Authenticated as two users and an admin, with path ids drawn from each owner's real jobs: no 5xx,
answers conform to the document, and a non-admin never sees another owner's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from shared.db import Database
from shared.settings import Settings
from shared.tokens import mint_token
from tests.integration.api.helpers import ALICE, BOB, ROOT, echo_job
from tests.unit.api.echo import registry_with_echo

# Bounded so the whole run stays well under a minute on two cores.
MAX_EXAMPLES = 1200
ABSENT_ID = "6740a1f2c3d4e5f601234567"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Identity:
    """Who calls: their owner id, token and role."""

    sub: str
    token: str
    admin: bool


@dataclass(frozen=True)
class World:
    """The app's settings, the callers, and each owner's seeded job ids."""

    settings: Settings
    identities: tuple[Identity, ...]
    jobs: dict[str, list[str]]


@pytest.fixture
async def world(api_settings: Settings, db: Database) -> World:
    """Two jobs per owner (one paused), created through the repository before fuzzing."""
    from api.schemas.jobs import JobCreate
    from api.validation import spec_from_body
    from shared import jobs_repo

    jobs: dict[str, list[str]] = {}
    for owner in (ALICE, BOB, ROOT):
        jobs[owner] = []
        for index, enabled in enumerate((True, False)):
            body = JobCreate.model_validate(echo_job(f"{owner} {index}", enabled=enabled))
            spec = spec_from_body(body, api_settings, by_admin=owner == ROOT)
            created = await jobs_repo.create_job(db, spec, owner_id=owner)
            jobs[owner].append(str(created.id))
    # An admin-only job in alice's account: every write and trigger of it must stay refused.
    purge = JobCreate.model_validate(
        {
            "name": "purge",
            "type": "purgeSessions",
            "cron": "0 3 * * *",
            "payload": {"inactiveDays": 30},
        }
    )
    spec = spec_from_body(purge, api_settings, by_admin=True)
    jobs[ALICE].append(str((await jobs_repo.create_job(db, spec, owner_id=ALICE)).id))
    identities = tuple(
        Identity(sub, mint_token(api_settings, sub, ["admin"] if admin else []), admin)
        for sub, admin in ((ALICE, False), (BOB, False), (ROOT, True))
    )
    return World(api_settings, identities, jobs)


def owners_in(value: Any) -> set[str]:
    """Every `ownerId` anywhere in a JSON value."""
    found: set[str] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            owner = item.get("ownerId")
            if isinstance(owner, str):
                found.add(owner)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def assert_no_foreign_jobs(world: World, identity: Identity, text: str) -> None:
    if identity.admin:
        return
    for owner, ids in world.jobs.items():
        if owner == identity.sub:
            continue
        assert not any(job_id in text for job_id in ids), f"{identity.sub} saw {owner}'s job"
    try:
        body = json.loads(text) if text else None
    except ValueError:
        return
    assert owners_in(body) <= {identity.sub}, f"{identity.sub} saw {owners_in(body)}"


def test_openapi_fuzz(world: World) -> None:
    app = create_app(world.settings, registry=registry_with_echo())
    schema = schemathesis.openapi.from_asgi("/api/cron/schema/openapi.json", app)
    path_ids = [*(job_id for ids in world.jobs.values() for job_id in ids), ABSENT_ID]
    cases = st.one_of(
        [
            schema.as_strategy(mode, path_parameters={"job_id": job_id})
            for job_id in path_ids
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
    )
    statuses: dict[int, int] = {}
    operations: set[tuple[str, str]] = set()

    @given(identity=st.sampled_from(world.identities), case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(identity: Identity, case: Any) -> None:
        headers = {"Authorization": f"Bearer {identity.token}"}
        response = case.call(headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        operations.add((case.method.upper(), case.path))
        case.validate_response(response, checks=CHECKS, headers=headers)
        assert_no_foreign_jobs(world, identity, response.text)

    try:
        call()
    finally:
        # Schemathesis keeps the app's lifespan running until the process exits; shut it down
        # here so the app's MongoDB client is closed now, not left to the garbage collector.
        shutdown_lifespans()
    # The run exercised real successes and real refusals, not only one kind of answer.
    assert any(200 <= status < 300 for status in statuses), statuses
    assert {400, 401, 404, 422} <= set(statuses), statuses
    assert sum(statuses.values()) >= MAX_EXAMPLES // 2
    # Every operation of the document was called (three identities, all endpoints).
    documented = {
        (method.upper(), path)
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert len(documented) >= 11 and documented <= operations, documented - operations
