"""Two real `cronjobs-api` processes on one database: the quota and the rate limit hold across
them (issue 11), and what the HTTP server answers before the app sees a request."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest

from shared.settings import Settings
from tests.process.api.support import ApiProcess, auth, job_body

pytestmark = pytest.mark.process


async def test_quota_and_rate_limit_hold_across_two_api_processes(
    two_apis: tuple[ApiProcess, ApiProcess], settings: Settings
) -> None:
    first, second = two_apis
    async with httpx.AsyncClient(timeout=30) as client:
        # 20 concurrent creates, alternating between the processes, quota 7.
        creates = [
            client.post(
                f"{api.url}/jobs", json=job_body(f"job {i}"), headers=auth(settings, "alice")
            )
            for i, api in enumerate([first, second] * 10)
        ]
        statuses = sorted(response.status_code for response in await asyncio.gather(*creates))
        assert statuses == [201] * 7 + [409] * 13, statuses
        listed = await client.get(f"{first.url}/jobs", headers=auth(settings, "alice"))
        assert len(listed.json()["items"]) == 7

        # Bob's budget is 25 per hour in total, not 25 per process.
        gets = [
            client.get(f"{api.url}/jobs", headers=auth(settings, "bob"))
            for api in [first, second] * 20
        ]
        counted = [response.status_code for response in await asyncio.gather(*gets)]
        assert counted.count(200) == 25 and counted.count(429) == 15, counted
        refused = next(
            r
            for r in await asyncio.gather(
                client.get(f"{second.url}/jobs", headers=auth(settings, "bob"))
            )
        )
        assert refused.status_code == 429
        assert set(refused.json()) == {"status", "title", "detail", "errors"}
        assert int(refused.headers["Retry-After"]) >= 1


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        chunks = []
        while True:
            try:
                chunk = connection.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


# Requests uvicorn's parser refuses itself: a plain-text 400 before the app (README "Security").
SERVER_REFUSED = {
    "malformed request line": b"GARBAGE\r\n\r\n",
    "unknown method": b"FOO /api/cron/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in the path": b"GET /api/cron/jobs/\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad Content-Length": b"POST /api/cron/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "Content-Length and chunked": (
        b"POST /api/cron/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
}
# Odd requests that reach the app: answered in the problem shape.
APP_ANSWERED = {
    "bad percent-encoding in the id": (b"GET /api/cron/jobs/%ZZ", 404),
    "invalid UTF-8 in the query": (b"GET /api/cron/jobs?limit=%FF", 422),
    "XML body": (b"POST /api/cron/jobs", 400),
    "unknown path": (b"GET /api/cron/nothing", 404),
    "method not allowed": (b"PATCH /api/cron/jobs", 405),
    "40 KB of headers": (b"GET /api/cron/jobs", 431),
}


def test_odd_requests_get_a_4xx_in_the_problem_shape_unless_the_server_refuses_them(
    two_apis: tuple[ApiProcess, ApiProcess], settings: Settings
) -> None:
    # One pair of processes for every case (starting them is the slow part).
    port = two_apis[0].port
    for name, request in SERVER_REFUSED.items():
        answer = _raw(port, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), (name, answer[:200])
        assert b"text/plain" in head and body == b"Invalid HTTP request received.", name
    token = auth(settings, "carol")["Authorization"].encode()
    for name, (start, status) in APP_ANSWERED.items():
        extra = b"X-Filler: " + b"a" * 40_000 + b"\r\n" if status == 431 else b""
        body = b"<a></a>" if name == "XML body" else b""
        request = (
            start
            + b" HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + token
            + b"\r\n"
            + extra
            + b"Content-Type: application/xml\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        answer = _raw(port, request)
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status), (name, answer[:300])
        assert b"application/json" in head, name
        problem = json.loads(payload)
        assert set(problem) == {"status", "title", "detail", "errors"}, name
        assert problem["status"] == status, name
