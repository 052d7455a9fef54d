"""httpRequest handler against a real local HTTP server that verifies the signature."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from shared import __version__
from shared.job_types.http_request import HttpMethod, HttpRequestPayload
from shared.netguard import IPAddress, parse_ip
from shared.settings import Settings
from tests.integration.job_types.conftest import SIGNING_SECRET, ContextFactory, configure
from tests.integration.job_types.servers import WebServer, free_port
from tests.integration.job_types.tls import self_signed
from worker.handlers import http_request
from worker.handlers.context import HandlerError, RunContext


def _http(settings: Settings, web: WebServer, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "http_base_url": f"http://127.0.0.1:{web.port}",
        "http_signing_secret": SIGNING_SECRET,
        **changes,
    }
    return configure(settings, **values)


async def _call(ctx: RunContext, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return await http_request.call(ctx, HttpRequestPayload.model_validate(payload), **kw)


async def test_signed_request_with_identity_headers_reaches_the_endpoint(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": "/ok", "headers": {"X-Trace": "abc"}, "body": {"n": 1, "text": "é"}}
    ctx = make_context(
        "httpRequest", payload, name="Nightly ✓ sync", settings_=_http(settings, web_server)
    )
    result = await _call(ctx, payload)

    assert result["statusCode"] == 200
    assert result["responseSnippet"] == 'ok:{"n":1,"text":"é"}'
    assert isinstance(result["durationMs"], int)
    [received] = web_server.requests
    assert received.signature_ok
    assert received.method == "POST" and received.path == "/ok"
    assert received.body == '{"n":1,"text":"é"}'.encode()
    headers = received.headers
    assert headers["User-Agent"] == f"cronjobs/{__version__}"
    assert headers["X-Cron-Job"] == "Nightly %E2%9C%93 sync"
    assert headers["X-Cron-Job-Id"] == str(ctx.job.id)
    assert headers["X-Cron-Run-Id"] == ctx.run_id
    assert headers["X-Cron-Idempotency-Key"] == ctx.idempotency_key
    assert headers["X-Cron-Scheduled-For"].endswith("Z")
    assert headers["X-Cron-Signature"].startswith(f"t={headers['X-Cron-Timestamp']},v1=")
    assert abs(int(headers["X-Cron-Timestamp"]) - time.time()) < 60
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Trace"] == "abc"


async def test_a_wrong_secret_does_not_verify(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": "/ok", "body": "text body"}
    wrong = _http(settings, web_server, http_signing_secret="another-secret")
    await _call(make_context("httpRequest", payload, settings_=wrong), payload)
    [received] = web_server.requests
    assert received.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert received.signature_ok is False


async def test_non_2xx_fails_with_status_and_snippet_on_one_line(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": "/status/503", "method": "DELETE"}
    ctx = make_context("httpRequest", payload, settings_=_http(settings, web_server))
    with pytest.raises(HandlerError) as error:
        await _call(ctx, payload)
    message = str(error.value)
    assert message.startswith("HTTP 503 Service Unavailable from 127.0.0.1 after ")
    assert message.endswith(": boom 503 second line")
    assert web_server.requests[0].method == "DELETE" and web_server.requests[0].signature_ok


async def test_a_host_resolving_to_loopback_is_refused_after_dns(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": web_server.url("/ok", host="localhost")}
    configured = _http(settings, web_server, http_allowed_hosts="localhost")
    ctx = make_context("httpRequest", payload, settings_=configured)
    with pytest.raises(HandlerError, match=r"'localhost' resolves to .* which is loopback"):
        await _call(ctx, payload)
    assert web_server.requests == []


async def test_loopback_is_reachable_when_private_networks_are_allowed(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": web_server.url("/ok", host="localhost"), "method": "GET"}
    configured = _http(
        settings, web_server, http_allowed_hosts="localhost", http_allow_private_networks=True
    )
    result = await _call(make_context("httpRequest", payload, settings_=configured), payload)
    assert result["statusCode"] == 200
    assert web_server.requests[0].headers["Host"] == f"localhost:{web_server.port}"


@pytest.mark.parametrize(
    ("url", "allowed", "message"),
    [
        ("http://127.0.0.1:{port}/ok", "127.0.0.1", "address 127.0.0.1 which is loopback"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "cloud metadata"),
        ("http://10.1.2.3/", "10.1.2.3", "address 10.1.2.3 which is private"),
        ("http://localhost:{port}/ok", "example.com", "host 'localhost' is not allowed$"),
    ],
)
async def test_refused_targets_are_never_contacted(
    make_context: ContextFactory,
    settings: Settings,
    web_server: WebServer,
    url: str,
    allowed: str,
    message: str,
) -> None:
    payload = {"url": url.format(port=web_server.port)}
    configured = _http(settings, web_server, http_allowed_hosts=allowed)
    with pytest.raises(HandlerError, match=message):
        await _call(make_context("httpRequest", payload, settings_=configured), payload)
    assert web_server.requests == []


class FakeDns:
    """A resolver with fixed answers that counts lookups (system DNS knows none of these)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        return [address for text in self.answers[host] if (address := parse_ip(text))]


async def test_the_connection_goes_to_the_vetted_address(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    # pinned.test exists only in FakeDns: reaching the server proves no second lookup happened.
    dns = FakeDns({"pinned.test": ["127.0.0.1"]})
    payload = {"url": web_server.url("/ok", host="pinned.test")}
    configured = _http(
        settings, web_server, http_allowed_hosts="pinned.test", http_allow_private_networks=True
    )
    result = await _call(
        make_context("httpRequest", payload, settings_=configured), payload, resolver=dns
    )
    assert result["statusCode"] == 200
    assert dns.lookups == ["pinned.test"]
    assert web_server.requests[0].headers["Host"] == f"pinned.test:{web_server.port}"


async def test_every_resolved_address_must_be_public(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    dns = FakeDns({"mixed.test": ["93.184.215.14", "169.254.169.254"]})
    payload = {"url": "https://mixed.test/hook"}
    configured = _http(settings, web_server, http_allowed_hosts="*.test")
    with pytest.raises(HandlerError, match=r"resolves to 169\.254\.169\.254 which is cloud"):
        await _call(
            make_context("httpRequest", payload, settings_=configured), payload, resolver=dns
        )


async def test_unreachable_address_falls_back_to_the_next_vetted_one(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    dns = FakeDns({"multi.test": ["127.0.0.2", "127.0.0.1"]})  # nobody listens on .2
    payload = {"url": web_server.url("/ok", host="multi.test")}
    configured = _http(
        settings, web_server, http_allowed_hosts="multi.test", http_allow_private_networks=True
    )
    result = await _call(
        make_context("httpRequest", payload, settings_=configured), payload, resolver=dns
    )
    assert result["statusCode"] == 200


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[WebServer, Any]]:
    server_context, client_context = self_signed(tmp_path, "secure.test")
    web = WebServer(secret=SIGNING_SECRET.encode(), tls=server_context)
    web.start()
    try:
        yield web, client_context
    finally:
        web.stop()


async def test_https_to_a_pinned_address_verifies_the_certificate_for_the_host(
    make_context: ContextFactory, settings: Settings, tls_server: tuple[WebServer, Any]
) -> None:
    web, trust = tls_server
    dns = FakeDns({"secure.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    configured = _http(settings, web, http_allowed_hosts="*.test", http_allow_private_networks=True)
    good = {"url": web.url("/ok", host="secure.test")}
    result = await _call(
        make_context("httpRequest", good, settings_=configured), good, resolver=dns, verify=trust
    )
    assert result["statusCode"] == 200 and web.requests[0].signature_ok

    wrong_name = {"url": web.url("/ok", host="other.test")}
    with pytest.raises(HandlerError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await _call(
            make_context("httpRequest", wrong_name, settings_=configured),
            wrong_name,
            resolver=dns,
            verify=trust,
        )
    assert len(web.requests) == 1


async def test_redirects_are_followed_within_the_rules(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": f"/redirect?status=303&to={quote('/ok')}", "body": "payload"}
    ctx = make_context("httpRequest", payload, settings_=_http(settings, web_server))
    result = await _call(ctx, payload)
    assert result["statusCode"] == 200
    first, second = web_server.requests
    assert (first.method, second.method) == ("POST", "GET")
    assert second.body == b"" and second.signature_ok
    assert "Content-Type" not in second.headers


async def test_307_keeps_method_and_body(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": f"/redirect?status=307&to={quote('/ok')}", "method": "PUT", "body": "x"}
    ctx = make_context("httpRequest", payload, settings_=_http(settings, web_server))
    assert (await _call(ctx, payload))["responseSnippet"] == "ok:x"
    assert [(r.method, r.body, r.signature_ok) for r in web_server.requests[1:]] == [
        ("PUT", b"x", True)
    ]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://evil.example/", "host 'evil.example' is not allowed$"),
        ("http://localhost:{port}/ok", "'localhost' resolves to .* which is loopback"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("ftp://files.example/", "absolute http:// or https://"),
    ],
)
async def test_redirects_to_refused_targets_are_not_followed(
    make_context: ContextFactory,
    settings: Settings,
    web_server: WebServer,
    target: str,
    message: str,
) -> None:
    location = quote(target.format(port=web_server.port), safe="")
    payload = {"url": f"/redirect?to={location}"}
    configured = _http(settings, web_server, http_allowed_hosts="localhost,169.254.169.254")
    with pytest.raises(HandlerError, match=message):
        await _call(make_context("httpRequest", payload, settings_=configured), payload)
    assert len(web_server.requests) == 1


async def test_admin_any_host_only_exempts_payloads_an_admin_validated(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    # CRON_HTTP_ADMIN_ANY_HOST lets admins' jobs leave the allow-list, also by redirect; a
    # user's job to an allowed URL must not follow a redirect to any other host.
    dns = FakeDns({"elsewhere.test": ["127.0.0.1"]})
    target = quote(web_server.url("/ok", host="elsewhere.test"), safe="")
    payload = {"url": f"/redirect?to={target}", "method": "GET"}
    configured = _http(
        settings,
        web_server,
        http_allowed_hosts="allowed.test",
        http_admin_any_host=True,
        http_allow_private_networks=True,
    )
    users = make_context("httpRequest", payload, settings_=configured)
    assert users.job.payload_by_admin is False
    with pytest.raises(HandlerError, match=r"host 'elsewhere\.test' is not allowed$"):
        await _call(users, payload, resolver=dns)
    assert len(web_server.requests) == 1 and dns.lookups == []

    admins = replace(users, job=users.job.model_copy(update={"payload_by_admin": True}))
    assert (await _call(admins, payload, resolver=dns))["statusCode"] == 200
    assert dns.lookups == ["elsewhere.test"]
    assert web_server.requests[-1].headers["Host"] == f"elsewhere.test:{web_server.port}"


async def test_redirect_loops_stop_after_three(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    loop = "/redirect?to=" + quote("/redirect?to=" + quote("/redirect?to=/redirect"))
    payload = {"url": "/redirect?to=" + quote(loop), "method": "GET"}
    ctx = make_context("httpRequest", payload, settings_=_http(settings, web_server))
    with pytest.raises(HandlerError, match="more than 3 redirects"):
        await _call(ctx, payload)
    assert len(web_server.requests) == 4


async def test_response_is_read_up_to_the_cap_only(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": "/big", "method": "GET"}
    configured = _http(settings, web_server, http_max_response_bytes=4096)
    result = await _call(make_context("httpRequest", payload, settings_=configured), payload)
    assert result["responseSnippet"] == "x" * 500
    await asyncio.sleep(0.2)  # the server thread notices the closed connection
    assert web_server.big_bytes_sent < 16 * 1024 * 1024  # of 64 MiB offered


async def test_slow_endpoint_hits_the_payload_timeout(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": "/slow?seconds=3", "timeoutSeconds": 1}
    ctx = make_context("httpRequest", payload, settings_=_http(settings, web_server))
    began = time.monotonic()
    with pytest.raises(HandlerError, match="no complete answer within 1 s"):
        await _call(ctx, payload)
    assert time.monotonic() - began < 2.5


async def test_dns_failure_and_refused_connection_fail_with_one_line(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    configured = _http(settings, web_server, http_allowed_hosts="no-such-host.invalid")
    payload = {"url": "https://no-such-host.invalid/x"}
    with pytest.raises(HandlerError, match=r"DNS lookup of 'no-such-host\.invalid' failed"):
        await _call(make_context("httpRequest", payload, settings_=configured), payload)

    closed = configure(configured, http_base_url=f"http://127.0.0.1:{free_port()}")
    payload = {"url": "/ok"}
    with pytest.raises(HandlerError, match=r"cannot connect to 127\.0\.0\.1") as error:
        await _call(make_context("httpRequest", payload, settings_=closed), payload)
    assert "\n" not in str(error.value)


SECRET_HEADERS = {
    "X-Api-Key": "key-for-the-first-origin",
    "Authorization": "Bearer first-origin-token",
    "Cookie": "session=first-origin",
    "X-Trace": "abc",
    "Content-Type": "application/vnd.first+json",
}


def _lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


async def test_a_redirect_to_another_origin_carries_none_of_the_jobs_headers(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    # other.test is the same server under another name, i.e. another origin.
    dns = FakeDns({"other.test": ["127.0.0.1"]})
    target = quote(web_server.url("/ok", host="other.test"), safe="")
    payload = {
        "url": f"/redirect?status=307&to={target}",
        "method": "PUT",
        "headers": SECRET_HEADERS,
        "body": {"n": 1},
    }
    configured = _http(
        settings, web_server, http_allowed_hosts="other.test", http_allow_private_networks=True
    )
    ctx = make_context("httpRequest", payload, settings_=configured)
    result = await _call(ctx, payload, resolver=dns)

    assert result["responseSnippet"] == 'ok:{"n":1}'
    first, second = web_server.requests
    assert _lowered(first.headers)["x-api-key"] == SECRET_HEADERS["X-Api-Key"]
    sent = _lowered(second.headers)
    assert sent["host"] == f"other.test:{web_server.port}"
    for name, value in SECRET_HEADERS.items():
        assert sent.get(name.lower()) != value, name
    # Only the service's own headers, and the Content-Type of the body it still sends.
    assert sent["content-type"] == "application/json"
    assert sent["user-agent"] == f"cronjobs/{__version__}"
    assert sent["x-cron-job-id"] == str(ctx.job.id)
    assert second.signature_ok and second.body == b'{"n":1}'


async def test_a_redirect_within_the_origin_keeps_the_jobs_headers(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": f"/redirect?status=302&to={quote('/ok')}", "headers": SECRET_HEADERS}
    ctx = make_context("httpRequest", payload, settings_=_http(settings, web_server))
    await _call(ctx, payload)
    second = _lowered(web_server.requests[1].headers)
    assert second["x-api-key"] == SECRET_HEADERS["X-Api-Key"]
    assert second["authorization"] == SECRET_HEADERS["Authorization"]
    assert "content-type" not in second  # POST became GET without a body


@pytest.mark.parametrize("path", ["/../ok", "/%2e%2e/ok", "/../hooksevil"])
async def test_a_stored_path_that_climbs_out_of_the_base_path_is_not_called(
    make_context: ContextFactory, settings: Settings, web_server: WebServer, path: str
) -> None:
    # Built without validation: jobs stored before the creation-time check still run.
    payload = HttpRequestPayload.model_construct(
        url=path, method=HttpMethod.GET, headers={}, body=None, timeout_seconds=5
    )
    configured = _http(settings, web_server, http_base_url=web_server.url("/hooks"))
    ctx = make_context("httpRequest", {"url": path}, settings_=configured)
    with pytest.raises(HandlerError, match="leaves the base URL's path '/hooks'"):
        await http_request.call(ctx, payload)
    assert web_server.requests == []
