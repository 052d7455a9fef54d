"""The redirect policy of `httpRequest`: what the next hop may be and what it carries.

Every hop passes the checks of the first request: the same URL shape rules here, and the same
target checks (allow-list, resolved-address guard, never the API itself) when it is sent. A hop
is trusted (no address checks) only while it stays on CRON_HTTP_BASE_URL's origin *and* under
its path. The job's own headers (any of which may be a credential) go only to hops within the
first request's scope: under the base URL for a relative job URL, the same origin otherwise.
A Location that is not a usable URL fails the run for good: retrying cannot change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

import httpx

from shared import netguard
from shared.job_types.http_request import HttpMethod
from shared.settings import Settings
from worker.handlers.context import PermanentHandlerError

MAX_REDIRECTS: Final = 3
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
LOCATION_CHARS: Final = 100


@dataclass(frozen=True)
class Hop:
    """One request of the exchange (the first, or one after a redirect)."""

    url: httpx.URL
    method: str
    body: bytes
    # The job's own headers; dropped for good once a hop leaves `scope`.
    headers: dict[str, str] = field(default_factory=dict)
    # The service's Content-Type for `body`, sent unless `headers` has its own.
    content_type: str | None = None
    # On the base URL's origin and under its path: trusted configuration, no address checks.
    trusted: bool = False
    # Where the job's headers may go: a base URL (origin + path prefix), or an origin.
    scope: str = ""


def first_hop(
    url: httpx.URL,
    *,
    trusted: bool,
    method: str,
    body: bytes,
    headers: dict[str, str],
    content_type: str | None,
    settings: Settings,
) -> Hop:
    """The job's own request; its headers' scope is the base URL or the URL's origin."""
    scope = settings.http_base_url if trusted else _origin_url(url)
    return Hop(url, method, body, dict(headers), content_type, trusted, scope)


async def check_location(response: httpx.Response) -> None:
    """httpx response hook: a redirect's Location must be a usable URL (PermanentHandlerError).

    httpx parses the Location of every redirect itself, even when not following it, and
    reports a bad one as a transport error; this hook runs first and says what it is.
    """
    if response.has_redirect_location:
        _target(response.request.url, response.status_code, response.headers["location"])


def next_hop(hop: Hop, status: int, location: str, settings: Settings) -> Hop:
    """The hop a redirect asks for; PermanentHandlerError for a Location that is not a URL.

    The target's host and addresses are checked when the hop is sent, like the first request.
    """
    target = _target(hop.url, status, location)
    headers = hop.headers if netguard.under_base(target, hop.scope) else {}
    method, body, content_type = hop.method, hop.body, hop.content_type
    if status == 303 or (status in (301, 302) and method == HttpMethod.POST):
        method, body, content_type = HttpMethod.GET.value, b"", None
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return replace(
        hop,
        url=target,
        method=method,
        body=body,
        headers=headers,
        content_type=content_type,
        trusted=hop.trusted and netguard.under_base(target, settings.http_base_url),
    )


def _target(current: httpx.URL, status: int, location: str) -> httpx.URL:
    try:
        target = current.join(location)
        netguard.check_url_shape(str(target))
    except (httpx.InvalidURL, ValueError) as error:
        shown = location[:LOCATION_CHARS].encode("unicode_escape").decode("ascii")
        reason = " ".join(str(error).split()) or type(error).__name__
        raise PermanentHandlerError(
            f"HTTP {status} redirect with an unusable Location {shown!r}: {reason}"
        ) from None
    return target


def _origin_url(url: httpx.URL) -> str:
    return str(url.copy_with(path="/", query=None, fragment=None))
