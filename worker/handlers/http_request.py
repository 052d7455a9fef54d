"""Handler of `httpRequest`: a signed call, SSRF-checked after DNS, pinned to the vetted address."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from shared import netguard
from shared.job_types import http_call
from shared.job_types.http_request import HttpRequestPayload, own_endpoints
from shared.settings import Settings
from worker.handlers import redirects
from worker.handlers.context import HandlerError, RunContext

USER_AGENT = http_call.USER_AGENT
SNIPPET_CHARS = 500
ERROR_SNIPPET_CHARS = 120

Resolver = Callable[[str, int], Awaitable[list[netguard.IPAddress]]]


async def system_resolver(host: str, port: int) -> list[netguard.IPAddress]:
    """Every address the system resolver returns for `host`, in its preference order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[netguard.IPAddress] = []
    for info in infos:
        address = netguard.parse_ip(str(info[4][0]).partition("%")[0])
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


async def handle(ctx: RunContext, payload: HttpRequestPayload) -> dict[str, Any] | None:
    """Call the endpoint; a non-2xx answer (or a refused target) fails the attempt."""
    return await call(ctx, payload)


async def call(
    ctx: RunContext,
    payload: HttpRequestPayload,
    *,
    resolver: Resolver = system_resolver,
    verify: ssl.SSLContext | bool = True,
) -> dict[str, Any]:
    """`handle` with the resolver and TLS trust injectable (tests use them)."""
    try:
        url, trusted = netguard.resolve_url(payload.url, ctx.settings.http_base_url)
    except netguard.TargetError as error:
        raise _refused(ctx, error) from None
    body, content_type = http_call.body_of(payload)
    hop = redirects.first_hop(
        url,
        trusted=trusted,
        method=payload.method.value,
        body=body,
        headers=payload.headers,
        content_type=content_type,
        settings=ctx.settings,
    )
    started = time.monotonic()
    timeout = payload.timeout_seconds
    try:
        async with (
            asyncio.timeout(timeout),
            # trust_env=False: no proxy from the environment may bypass the address pinning.
            # httpx's own limit is a backstop; the asyncio deadline above covers the whole call.
            httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                timeout=timeout + 1,
                verify=verify,
                event_hooks={"response": [redirects.check_location]},
            ) as client,
        ):
            status, reason, content, final = await _exchange(ctx, client, hop, resolver)
    except TimeoutError:
        raise HandlerError(f"no complete answer within {timeout} s") from None
    duration_ms = round((time.monotonic() - started) * 1000)
    snippet = content.decode("utf-8", errors="replace")
    ctx.log.info("http_request.answered", status=status, duration_ms=duration_ms, host=final.host)
    if not 200 <= status < 300:
        short = " ".join(snippet.split())[:ERROR_SNIPPET_CHARS]
        raise HandlerError(
            " ".join(f"HTTP {status} {reason}".split())
            + f" from {final.host} after {duration_ms} ms"
            + (f": {short}" if short else "")
        )
    return {
        "statusCode": status,
        "durationMs": duration_ms,
        "responseSnippet": snippet[:SNIPPET_CHARS],
    }


async def _exchange(
    ctx: RunContext, client: httpx.AsyncClient, hop: redirects.Hop, resolver: Resolver
) -> tuple[int, str, bytes, httpx.URL]:
    """Send `hop`, following up to MAX_REDIRECTS redirects to permitted targets."""
    timestamp = int(time.time())
    for _ in range(redirects.MAX_REDIRECTS + 1):
        response = await _send(ctx, client, hop, timestamp, resolver)
        try:
            location = response.headers.get("location")
            if response.status_code not in redirects.REDIRECT_STATUSES or not location:
                try:
                    content = await _read_capped(response, ctx.settings.http_max_response_bytes)
                except httpx.HTTPError as error:
                    raise HandlerError(f"{hop.url.host}: {_describe(error)}") from None
                return response.status_code, response.reason_phrase, content, hop.url
        finally:
            await response.aclose()
        hop = redirects.next_hop(hop, response.status_code, location, ctx.settings)
        ctx.log.info("http_request.redirect", status=response.status_code, to=str(hop.url))
    raise HandlerError(f"more than {redirects.MAX_REDIRECTS} redirects")


async def _send(
    ctx: RunContext,
    client: httpx.AsyncClient,
    hop: redirects.Hop,
    timestamp: int,
    resolver: Resolver,
) -> httpx.Response:
    service = http_call.identity_headers(ctx.identity, ctx.settings, timestamp, hop.body)
    headers = http_call.request_headers(hop.headers, hop.content_type, service)
    try:
        targets = await _targets(hop, ctx.settings, resolver, ctx.job.payload_by_admin)
    except netguard.TargetError as error:
        raise _refused(ctx, error) from None
    last_error: httpx.TransportError | None = None
    for connect_url, extensions in targets:
        if connect_url != hop.url:
            headers["Host"] = hop.url.netloc.decode("ascii")
        request = client.build_request(
            hop.method, connect_url, headers=headers, content=hop.body, extensions=extensions
        )
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as error:
            last_error = error  # try the next vetted address
        except httpx.TransportError as error:
            raise HandlerError(f"{hop.url.host}: {_describe(error)}") from None
    raise HandlerError(f"cannot connect to {hop.url.host}: {_describe(last_error)}")


async def _targets(
    hop: redirects.Hop, settings: Settings, resolver: Resolver, payload_by_admin: bool
) -> list[tuple[httpx.URL, dict[str, Any]]]:
    """Where to connect: the URL itself (trusted or IP literal) or each vetted address.

    TargetError if the hop may not be sent: the API itself, a host off the allow-list, or an
    address that is not public.
    """
    own = own_endpoints(settings)
    netguard.check_not_own(hop.url, own)
    if hop.trusted:
        return [(hop.url, {})]
    host = netguard.host_of(hop.url)
    # Only a payload last validated under admin rules may leave the allow-list (redirects
    # included): the job records that (`payloadByAdmin`), the setting must also allow it.
    netguard.check_host_allowed(
        hop.url,
        settings.http_allowed_hosts,
        exempt=settings.http_admin_any_host and payload_by_admin,
    )
    literal = netguard.parse_ip(host)
    if literal is not None:
        netguard.check_address(literal, settings.http_allow_private_networks)
        return [(hop.url, {})]
    addresses = await _resolve(host, hop.url, resolver)
    for address in addresses:
        netguard.check_address(address, settings.http_allow_private_networks, host)
    netguard.check_not_own(hop.url, own, addresses)
    # Connect to the address just vetted, never to a second lookup (DNS rebinding);
    # TLS still verifies the certificate for the real host name (SNI).
    extensions = {"sni_hostname": host} if hop.url.scheme == "https" else {}
    return [(hop.url.copy_with(host=str(address)), extensions) for address in addresses]


async def _resolve(host: str, url: httpx.URL, resolver: Resolver) -> list[netguard.IPAddress]:
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = await resolver(host, port)
    except OSError as error:
        raise HandlerError(f"DNS lookup of {host!r} failed: {_describe(error)}") from None
    if not addresses:
        raise HandlerError(f"DNS lookup of {host!r} returned no address")
    return addresses


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body, undecoded, without reading the rest."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _refused(ctx: RunContext, error: netguard.TargetError) -> HandlerError:
    """The owner's one-line reason; the setting behind it goes to the log for the operator."""
    if error.operator_detail:
        ctx.log.warning("http_request.target_refused", reason=error.operator_detail)
    return HandlerError(str(error))


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no address to connect to"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
