"""Hostile inputs: each gets its documented 4xx, in the error shape, and changes nothing stored."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import jwt
import pytest

from shared.db import JOBS
from tests.integration.api.helpers import ALICE, BOB, ROOT, Api, echo_job, snapshot
from tests.integration.api.hostile import (
    NOW,
    OID,
    PURGE,
    F,
    Hostile,
    deep_array,
    duplicate_owner_ids,
    email_job,
    http_job,
    job,
    nested,
)
from tests.integration.api.hostile_more import ISSUE_11_CORPUS, MORE_ENDPOINTS_CORPUS
from tests.integration.api.test_auth import claims, hand_signed, signed, unsigned
from tests.support import TEST_JWT_SECRET

CORPUS = [
    # Size and shape of the body.
    Hostile("huge body", 413, content=b'{"name":"' + b"x" * 200_000 + b'"}'),
    Hostile("huge payload value", 413, body=job(payload={"message": "x" * 70_000})),
    Hostile("deeply nested body", 400, content=deep_array(20_000)),
    Hostile(
        "deeply nested payload", 422, body=job(payload={"extra": nested(20)}), fields=F({"payload"})
    ),
    Hostile(
        "payload nested 500 levels",
        422,
        body=job(payload={"extra": nested(500)}),
        fields=F({"payload"}),
    ),
    Hostile("not json", 400, content=b"name=x&type=echo"),
    Hostile("truncated json", 400, content=b'{"name": "x", "type": '),
    Hostile("invalid utf-8", 400, content=b'{"name": "\xff\xfe\xfd", "type": "echo"}'),
    Hostile(
        "lone surrogate escape",
        400,
        content=b'{"name": "\\ud800", "type": "echo", "cron": "* * * * *"}',
    ),
    Hostile("json array body", 422, body=[job()]),
    Hostile("json string body", 422, body="job"),
    Hostile("json null body", 422, content=b"null"),
    Hostile("empty body", 422, content=b""),
    # The last duplicate key wins and is the one checked: refused as "another owner".
    Hostile("duplicate keys smuggling ownerId", 403, content=duplicate_owner_ids(ALICE, BOB)),
    # NUL bytes and control characters.
    Hostile("NUL in name", 422, body=job(name="a\x00b"), fields=F({"name"})),
    Hostile("NUL in cron", 422, body=job(cron="* * * * *\x00"), fields=F({"cron"})),
    Hostile("NUL in timezone", 422, body=job(timezone="UTC\x00"), fields=F({"timezone"})),
    Hostile(
        "NUL in payload key",
        422,
        body=job(payload={"extra": {"a\x00": 1}}),
        fields=F({"payload.extra.'a\\x00'"}),
    ),
    Hostile(
        "header injection in name",
        422,
        body=job(name="x\r\nSet-Cookie: session=evil"),
        fields=F({"name"}),
    ),
    Hostile("name of 10k characters", 422, body=job(name="n" * 10_000), fields=F({"name"})),
    Hostile("blank name", 422, body=job(name="   "), fields=F({"name"})),
    # Cron fields out of range and other schedules that must not be accepted.
    Hostile("minute 60", 422, body=job(cron="60 * * * *"), fields=F({"cron"})),
    Hostile("hour 24", 422, body=job(cron="0 24 * * *"), fields=F({"cron"})),
    Hostile("day 0", 422, body=job(cron="0 0 0 * *"), fields=F({"cron"})),
    Hostile("day 32", 422, body=job(cron="0 0 32 * *"), fields=F({"cron"})),
    Hostile("month 13", 422, body=job(cron="0 0 1 13 *"), fields=F({"cron"})),
    Hostile("weekday 8", 422, body=job(cron="0 0 * * 8"), fields=F({"cron"})),
    Hostile("seconds 60", 422, body=job(cron="60 * * * * *"), fields=F({"cron"})),
    Hostile("seven fields", 422, body=job(cron="0 0 0 1 1 * 2030"), fields=F({"cron"})),
    Hostile("every second for a non-admin", 422, body=job(cron="* * * * * *"), fields=F({"cron"})),
    Hostile("every 10 s for a non-admin", 422, body=job(cron="*/10 * * * * *"), fields=F({"cron"})),
    Hostile("never fires (Feb 30)", 422, body=job(cron="0 0 30 2 *"), fields=F({"cron"})),
    Hostile("@reboot", 422, body=job(cron="@reboot"), fields=F({"cron"})),
    Hostile("huge step", 422, body=job(cron="*/99999999999999999999 * * * *"), fields=F({"cron"})),
    Hostile("cron is a number", 422, body=job(cron=5), fields=F({"cron"})),
    # Zones.
    Hostile("unknown zone", 422, body=job(timezone="Mars/Olympus_Mons"), fields=F({"timezone"})),
    Hostile(
        "zone path traversal", 422, body=job(timezone="../../../etc/passwd"), fields=F({"timezone"})
    ),
    Hostile(
        "posix zone file", 422, body=job(timezone="posix/Europe/Berlin"), fields=F({"timezone"})
    ),
    Hostile("localtime", 422, body=job(timezone="localtime"), fields=F({"timezone"})),
    Hostile("offset instead of zone", 422, body=job(timezone="UTC+05:00"), fields=F({"timezone"})),
    # Operator and type confusion (MongoDB query injection).
    Hostile("type as operator", 422, body=job(type={"$ne": None}), fields=F({"type"})),
    Hostile("type $where", 422, body=job(type="$where"), fields=F({"type"})),
    Hostile("ownerId as operator", 422, body=job(ownerId={"$ne": None}), fields=F({"ownerId"})),
    Hostile("ownerId of someone else", 403, body=job(ownerId=BOB)),
    Hostile("payload as string", 422, body=job(payload="{}"), fields=F({"payload"})),
    Hostile(
        "payload $set key",
        422,
        body=job(payload={"extra": {"$set": {"ownerId": BOB}}}),
        fields=F({"payload.extra.'$set'"}),
    ),
    Hostile(
        "payload dotted key",
        422,
        body=job(payload={"extra": {"ownerId.x": 1}}),
        fields=F({"payload.extra.'ownerId.x'"}),
    ),
    Hostile(
        "payload int beyond 64 bit",
        422,
        body=job(payload={"extra": {"n": 10**30}}),
        fields=F({"payload.extra.n"}),
    ),
    Hostile("server field status", 422, body=job(status="running"), fields=F({"status"})),
    Hostile("server field _id", 422, body=job(_id={"$oid": OID}), fields=F({"_id"})),
    Hostile("server field version", 422, body=job(version=99), fields=F({"version"})),
    Hostile(
        "server field activeRunIds", 422, body=job(activeRunIds=[]), fields=F({"activeRunIds"})
    ),
    Hostile(
        "timeout beyond the cap", 422, body=job(timeoutSeconds=10**12), fields=F({"timeoutSeconds"})
    ),
    Hostile("fractional timeout", 422, body=job(timeoutSeconds=1.5), fields=F({"timeoutSeconds"})),
    Hostile(
        "retry attempts 1e9",
        422,
        body=job(retry={"maxAttempts": 10**9}),
        fields=F({"retry.maxAttempts"}),
    ),
    Hostile("admin-only type", 403, body=job(type="noop", payload={})),
    # Ids.
    Hostile(
        "$oid object as id", 404, method="GET", path="/jobs/" + quote(json.dumps({"$oid": OID}))
    ),
    Hostile("$where as id", 404, method="GET", path="/jobs/$where"),
    Hostile("$ne in id", 404, method="DELETE", path="/jobs/" + quote('{"$ne":null}')),
    Hostile("id with NUL", 404, method="GET", path="/jobs/" + quote(OID + "\x00")),
    Hostile(
        "uppercase-free 23 hex",
        404,
        method="PATCH",
        path="/jobs/" + OID[:-1],
        body={"enabled": False},
    ),
    Hostile("another owner's job: delete", 404, method="DELETE", path="/jobs/{bob}"),
    Hostile(
        "another owner's job: patch",
        404,
        method="PATCH",
        path="/jobs/{bob}",
        body={"enabled": False},
    ),
    Hostile("another owner's job: run now", 404, method="POST", path="/jobs/{bob}/run-now"),
    Hostile("list another owner's jobs", 403, method="GET", path="/jobs?ownerId=" + BOB),
    Hostile(
        "cursor as operator",
        422,
        method="GET",
        path="/jobs?cursor=" + quote('{"$gt":""}'),
        fields=F({"cursor"}),
    ),
    Hostile("negative limit", 422, method="GET", path="/jobs?limit=-1", fields=F({"limit"})),
    Hostile(
        "limit beyond int64",
        422,
        method="GET",
        path="/jobs?limit=99999999999999999999",
        fields=F({"limit"}),
    ),
    # Tokens.
    Hostile(
        "jwt alg none as admin",
        401,
        method="DELETE",
        path="/jobs/{bob}",
        token=unsigned(claims(roles=["admin"])),
    ),
    Hostile(
        "expired token",
        401,
        method="DELETE",
        path="/jobs/{alice}",
        token=signed(claims(exp=NOW - 60)),
    ),
    Hostile(
        "token not valid before next hour",
        401,
        method="DELETE",
        path="/jobs/{alice}",
        token=signed(claims(nbf=NOW + 3600)),
    ),
    Hostile(
        "token issued in the future",
        401,
        method="DELETE",
        path="/jobs/{alice}",
        token=signed(claims(iat=NOW + 3600)),
    ),
    Hostile(
        "token for HS512",
        401,
        token=hand_signed(claims(), TEST_JWT_SECRET.encode(), "HS512"),
        body=job(),
    ),
    Hostile("token with NUL sub", 401, body=job(), token=signed(claims(sub="alice\x00"))),
    Hostile(
        "roles as string",
        401,
        method="DELETE",
        path="/jobs/{bob}",
        token=signed(claims(roles="admin")),
    ),
    Hostile("10 KB authorization", 401, token="e" * 10_000, body=job()),
    Hostile("no token", 401, token="", body=job()),
    # Preconditions.
    Hostile(
        "If-Match injection",
        400,
        method="DELETE",
        path="/jobs/{alice}",
        headers={"If-Match": '"1" OR 1=1'},
    ),
    Hostile(
        "stale If-Match", 412, method="DELETE", path="/jobs/{alice}", headers={"If-Match": '"7"'}
    ),
    # Preview.
    Hostile(
        "preview count 1e9",
        422,
        path="/preview",
        body={"cron": "* * * * *", "count": 10**9},
        fields=F({"count"}),
    ),
    Hostile(
        "preview every second",
        422,
        path="/preview",
        body={"cron": "* * * * * *"},
        fields=F({"cron"}),
    ),
    # Job types' own payload rules.
    Hostile("ssrf loopback", 422, body=http_job("http://127.0.0.1:22/"), fields=F({"payload.url"})),
    Hostile(
        "ssrf metadata",
        422,
        body=http_job("http://169.254.169.254/latest/meta-data/"),
        fields=F({"payload.url"}),
    ),
    Hostile("ssrf private", 422, body=http_job("http://10.0.0.5/admin"), fields=F({"payload.url"})),
    Hostile(
        "ssrf disallowed host",
        422,
        body=http_job("https://evil.example.com/hook"),
        fields=F({"payload.url"}),
    ),
    Hostile(
        "ssrf file scheme", 422, body=http_job("file:///etc/passwd"), fields=F({"payload.url"})
    ),
    Hostile(
        "header injection in subject",
        422,
        body=email_job(subject="Hi\r\nBcc: all@example.com"),
        fields=F({"payload.subject"}),
    ),
    Hostile(
        "template path traversal",
        422,
        body=email_job(template="../../etc/passwd"),
        fields=F({"payload.template"}),
    ),
    Hostile(
        "51 recipients",
        422,
        body=email_job(to=[f"u{i}@example.com" for i in range(51)]),
        fields=F({"payload.to"}),
    ),
]


CORPUS += ISSUE_11_CORPUS + MORE_ENDPOINTS_CORPUS


@pytest.fixture
async def world(api: Api) -> AsyncIterator[dict[str, str]]:
    """Alice's and Bob's jobs, a run of Alice's, and an admin-only job an admin put in Alice's
    account: what hostile requests must not change."""
    alices = await api.create(echo_job("alice's"), sub=ALICE)
    bobs = await api.create(echo_job("bob's"), sub=BOB)
    purge = await api.create(PURGE, sub=ROOT, admin=True)
    queued = await api.request("POST", f"/jobs/{alices['id']}/run-now")
    assert queued.status_code == 202
    yield {"alice": alices["id"], "bob": bobs["id"], "purge": purge["id"]}


def test_the_corpus_is_large_and_unique() -> None:
    assert len(CORPUS) >= 150
    assert len({case.name for case in CORPUS}) == len(CORPUS)
    # Every endpoint that takes input is attacked.
    paths = {
        (case.method, re.sub(r"\{(alice|bob|purge)\}", "{alice}", case.path.split("?")[0]))
        for case in CORPUS
    }
    for endpoint in [
        ("POST", "/jobs"),
        ("GET", "/jobs"),
        ("GET", "/jobs/{alice}"),
        ("PUT", "/jobs/{alice}"),
        ("PATCH", "/jobs/{alice}"),
        ("DELETE", "/jobs/{alice}"),
        ("POST", "/jobs/{alice}/run-now"),
        ("GET", "/jobs/{alice}/runs"),
        ("GET", "/jobs/{alice}/reports"),
        ("POST", "/preview"),
        ("GET", "/job-types"),
    ]:
        assert endpoint in paths, endpoint
    # Every job type's payload is attacked.
    types = {
        case.body["type"]
        for case in CORPUS
        if isinstance(case.body, dict) and isinstance(case.body.get("type"), str)
    }
    assert {"echo", "noop", "sendEmail", "purgeSessions", "generateReport", "httpRequest"} <= types


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
async def test_hostile_input_is_refused_and_changes_nothing(
    api: Api, world: dict[str, str], case: Hostile
) -> None:
    before = await snapshot(api.db)
    headers = dict(case.headers)
    if case.token is None:
        headers.update(api.auth(ROOT, admin=True) if case.admin else api.auth(ALICE))
    elif case.token:
        headers["Authorization"] = f"Bearer {case.token}"
    kwargs: dict[str, Any] = {"headers": headers}
    if case.content is not None:
        kwargs["content"] = case.content
        headers["Content-Type"] = "application/json"
    elif case.body is not None:
        kwargs["json"] = case.body
    path = case.path
    for name, job_id in world.items():
        path = path.replace("{" + name + "}", job_id)
    response = await api.http.request(case.method, "/api/cron" + path, **kwargs)
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    assert set(body) == {"status", "title", "detail", "errors"}
    assert body["status"] == case.status
    if case.status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if case.fields is not None:
        assert {error["field"] for error in body["errors"]} == case.fields
    assert case.detail in body["detail"]
    assert await snapshot(api.db) == before
    assert world["bob"] not in response.text
    # Owners never read the operator's settings or the service's internals (issue 11).
    assert "CRON_" not in response.text and "Traceback" not in response.text
    assert "evil" not in response.headers.get("Location", "")


@pytest.mark.parametrize(("first", "last", "status"), [(ALICE, BOB, 403), (BOB, ALICE, 201)])
async def test_duplicate_owner_keys_never_give_another_owner_a_job(
    api: Api, first: str, last: str, status: int
) -> None:
    # Ownership is checked on the one value the parsed body holds (the last key): a
    # non-admin's create is refused or makes the caller's job, never the smuggled owner's.
    response = await api.request(
        "POST",
        "/jobs",
        content=duplicate_owner_ids(first, last),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["ownerId"] == ALICE
    else:
        assert set(response.json()) == {"status", "title", "detail", "errors"}
    stored = await api.db[JOBS].find().to_list()
    assert [document["ownerId"] for document in stored] == ([ALICE] if status == 201 else [])


async def test_oversized_chunked_body_is_413(api: Api, world: dict[str, str]) -> None:
    before = await snapshot(api.db)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = await api.http.post(
        "/api/cron/jobs",
        content=chunks(),
        headers={**api.auth(ALICE), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert await snapshot(api.db) == before


def test_tokens_in_the_corpus_are_really_signed_as_described() -> None:
    # Guard against a corpus that passes because its tokens are broken for another reason.
    token = signed(claims(nbf=NOW + 3600))
    decoded = jwt.decode(
        token, TEST_JWT_SECRET, algorithms=["HS256"], options={"verify_nbf": False}
    )
    assert decoded["sub"] == ALICE
