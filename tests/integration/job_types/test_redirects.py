"""httpRequest redirects (issue 11): every hop is checked like the first one, the job's headers
stay under the base path, a malformed Location fails for good, and the API itself is no target."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from shared.job_types.http_request import HttpRequestPayload
from shared.settings import Settings
from tests.integration.job_types.conftest import SIGNING_SECRET, ContextFactory, configure
from tests.integration.job_types.servers import WebServer, free_port
from tests.integration.job_types.test_http_request import FakeDns
from worker.handlers import http_request
from worker.handlers.context import HandlerError, PermanentHandlerError

CREDENTIALS = {"Authorization": "Bearer owner-token", "X-Api-Key": "k-123"}


def _base(settings: Settings, web: WebServer, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "http_base_url": web.url("/hooks"),
        "http_signing_secret": SIGNING_SECRET,
        **changes,
    }
    return configure(settings, **values)


async def _call(ctx: Any, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return await http_request.call(ctx, HttpRequestPayload.model_validate(payload), **kw)


def _lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_out_of_the_base_path_is_checked_like_any_target(
    make_context: ContextFactory, settings: Settings, web_server: WebServer, status: int
) -> None:
    # Same origin as CRON_HTTP_BASE_URL, but outside its path: not trusted any more, so the
    # allow-list and the address guard apply, and they refuse it before anything is sent.
    payload = {
        "url": f"/redirect?status={status}&to={quote('/admin/secret')}",
        "method": "PUT",
        "headers": CREDENTIALS,
        "body": {"n": 1},
    }
    ctx = make_context("httpRequest", payload, settings_=_base(settings, web_server))
    with pytest.raises(HandlerError, match=r"^host '127\.0\.0\.1' is not allowed$"):
        await _call(ctx, payload)
    assert [request.path for request in web_server.requests] == ["/hooks" + str(payload["url"])]


async def test_job_headers_go_only_to_hops_under_the_base_path(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    # Here the host is allowed and private addresses too, so the hop outside the base path is a
    # permitted target: it is sent, but without the job's own headers (only the service's).
    payload = {
        "url": f"/redirect?status=307&to={quote('/elsewhere')}",
        "method": "PUT",
        "headers": CREDENTIALS,
        "body": "x",
    }
    configured = _base(
        settings, web_server, http_allowed_hosts="127.0.0.1", http_allow_private_networks=True
    )
    ctx = make_context("httpRequest", payload, settings_=configured)
    assert (await _call(ctx, payload))["statusCode"] == 200
    first, second = (_lowered(r.headers) for r in web_server.requests)
    assert first["authorization"] == "Bearer owner-token"
    assert web_server.requests[1].path == "/elsewhere"
    assert "authorization" not in second and "x-api-key" not in second
    assert second["x-cron-job-id"] == str(ctx.job.id) and web_server.requests[1].signature_ok


async def test_a_redirect_within_the_base_path_stays_trusted_with_the_headers(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    payload = {"url": f"/redirect?status=308&to={quote('/hooks/ok')}", "headers": CREDENTIALS}
    ctx = make_context("httpRequest", payload, settings_=_base(settings, web_server))
    assert (await _call(ctx, payload))["statusCode"] == 200
    second = _lowered(web_server.requests[1].headers)
    assert web_server.requests[1].path == "/hooks/ok"
    assert second["authorization"] == "Bearer owner-token"


@pytest.mark.parametrize("location", ["http://a.test:abc/", "http://[::1", "http://%zz/x"])
async def test_a_malformed_location_is_a_permanent_one_line_failure(
    make_context: ContextFactory, settings: Settings, web_server: WebServer, location: str
) -> None:
    payload = {"url": f"/redirect?to={quote(location, safe='')}", "method": "GET"}
    ctx = make_context("httpRequest", payload, settings_=_base(settings, web_server))
    with pytest.raises(PermanentHandlerError) as error:
        await _call(ctx, payload)
    message = str(error.value)
    assert message.startswith("HTTP 302 redirect with an unusable Location ")
    assert "\n" not in message and len(web_server.requests) == 1


async def test_a_base_url_that_is_the_api_itself_is_never_called(
    make_context: ContextFactory, settings: Settings, web_server: WebServer
) -> None:
    # A misconfigured base URL pointing at the API's own listening address.
    configured = _base(settings, web_server, api_port=web_server.port)
    payload = {"url": "/ok"}
    ctx = make_context("httpRequest", payload, settings_=configured)
    with pytest.raises(HandlerError, match="points at the cron service itself"):
        await _call(ctx, payload)
    assert web_server.requests == []


@pytest.mark.parametrize("target", ["own.test", "public.test"])
async def test_a_redirect_or_name_resolving_to_the_api_is_refused(
    make_context: ContextFactory, settings: Settings, web_server: WebServer, target: str
) -> None:
    # own.test resolves to the API's listening address (127.0.0.1 on `api_port`), public.test
    # is CRON_PUBLIC_BASE_URL; both only in the stub resolver.
    api_port = free_port()
    dns = FakeDns(
        {"hop.test": ["127.0.0.1"], "own.test": ["127.0.0.1"], "public.test": ["127.0.0.3"]}
    )
    configured = _base(
        settings,
        web_server,
        api_port=api_port,
        public_base_url=f"http://public.test:{api_port}",
        http_allowed_hosts="*.test",
        http_allow_private_networks=True,
    )
    location = quote(f"http://{target}:{api_port}/api/cron/jobs/x/run-now", safe="")
    payload = {"url": web_server.url(f"/redirect?status=307&to={location}", host="hop.test")}
    ctx = make_context("httpRequest", payload, settings_=configured)
    with pytest.raises(HandlerError, match="points at the cron service itself"):
        await _call(ctx, payload, resolver=dns)
    assert len(web_server.requests) == 1
    direct = {"url": f"http://{target}:{api_port}/api/cron/jobs"}
    with pytest.raises(HandlerError, match="points at the cron service itself"):
        await _call(make_context("httpRequest", direct, settings_=configured), direct, resolver=dns)
