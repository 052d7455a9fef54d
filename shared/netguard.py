"""Where an httpRequest job may connect (the SSRF policy), checked at creation and at run time."""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import unquote

import httpx

IPAddress = IPv4Address | IPv6Address

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

# Special-purpose ranges (IANA registries), most specific first; the label explains a refusal.
_BLOCKED_NETWORKS: tuple[tuple[IPv4Network | IPv6Network, str], ...] = tuple(
    (ip_network(network), label)
    for network, label in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/8", "reserved"),
        ("64:ff9b:1::/48", "private"),
        ("100::/64", "reserved"),
        ("2001::/23", "reserved"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "reserved"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_METADATA_ADDRESSES = frozenset({ip_address("169.254.169.254"), ip_address("fd00:ec2::254")})
_NAT64_PREFIX = ip_network("64:ff9b::/96")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_FORBIDDEN_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
_DOT_SEGMENTS = frozenset({".", ".."})


class TargetError(ValueError):
    """A URL or address the policy refuses; the message is fit to show the job's owner.

    `operator_detail` says which setting decided it: for the log, never for the owner.
    """

    def __init__(self, message: str, operator_detail: str = "") -> None:
        super().__init__(message)
        self.operator_detail = operator_detail


Endpoint = tuple[str, int]  # (normalized host or IP, port)
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def blocked_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address (e.g. "loopback"), or None if it is."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64_PREFIX:
            address = IPv4Address(int(address) & 0xFFFF_FFFF)
    if address in _METADATA_ADDRESSES:
        return "cloud metadata"
    for network, label in _BLOCKED_NETWORKS:
        if network.version == address.version and address in network:
            return label
    # Belt and braces: anything else the standard library does not consider global.
    return None if address.is_global else "non-public"


def parse_ip(host: str) -> IPAddress | None:
    """The address if `host` is an IP literal (brackets allowed), else None."""
    try:
        return ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def normalize_host(host: str) -> str:
    """Lower-case ASCII form without a trailing dot (IP literals in canonical form)."""
    host = host.strip().lower().rstrip(".")
    address = parse_ip(host)
    return str(address) if address is not None else host


def host_of(url: httpx.URL) -> str:
    """The URL's host as it is matched against the allow-list (IDNA/punycode, normalized)."""
    return normalize_host(url.raw_host.decode("ascii"))


def host_matches(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` equals a pattern, or is a subdomain of a `*.example.com` pattern."""
    host = normalize_host(host)
    for pattern in patterns:
        wanted = normalize_host(pattern)
        if wanted.startswith("*."):
            if host.endswith(wanted[1:]) and len(host) > len(wanted) - 1:
                return True
        elif host == wanted:
            return True
    return False


def check_url_shape(url: str) -> str:
    """A path (`/hook`) or an absolute http(s) URL with a plain host; raise ValueError otherwise."""
    if _FORBIDDEN_URL_CHARACTERS.search(url):
        raise ValueError("must not contain spaces, control characters or backslashes")
    if url.startswith("/"):
        if url.startswith("//"):
            raise ValueError("a path must start with a single '/' (no scheme-relative URLs)")
        if has_dot_segment(url.partition("?")[0].partition("#")[0]):
            raise ValueError("a path must not contain '.' or '..' segments (also percent-encoded)")
        return url
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise ValueError(f"is not a valid URL ({error})") from None
    if parsed.scheme not in ALLOWED_SCHEMES or not parsed.is_absolute_url:
        raise ValueError("must be an absolute http:// or https:// URL, or a path starting with /")
    if parsed.userinfo:
        raise ValueError("must not contain user credentials (user@host)")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ValueError("port must be between 1 and 65535")
    _check_host_syntax(host_of(parsed))
    return url


def _check_host_syntax(host: str) -> None:
    if "%" not in host and parse_ip(host) is not None:  # no IPv6 zone ids ("fe80::1%eth0")
        return
    labels = host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {host!r} is not a valid host name")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # "127.1", "0x7f000001" or "2130706433" are IPv4 addresses to some resolvers.
        raise ValueError(f"host {host!r} is an ambiguous numeric address; use dotted IPv4 form")


def has_dot_segment(path: str) -> bool:
    """Whether `path` has a `.` or `..` segment, also as `%2e`, `%2E%2e` or behind `%2f`.

    Receivers decode before they resolve dot segments, and some (Tomcat) ignore `;params`,
    so `/%2e%2e/x` and `/..;x/y` climb just as `/../x` does.
    """
    for segment in path.split("/"):
        for part in unquote(segment).split("/"):
            if part.partition(";")[0] in _DOT_SEGMENTS:
                return True
    return False


def resolve_url(url: str, base_url: str) -> tuple[httpx.URL, bool]:
    """The absolute URL to call and whether it is trusted (a path under CRON_HTTP_BASE_URL).

    Without a base URL (the default) a path is refused: the service has no backend of its own
    to call, and the API's own address must never be the default target.
    """
    if not url.startswith("/"):
        return httpx.URL(url), False
    if not base_url.strip():
        raise TargetError(
            "relative URLs are not available on this service: its operator has not configured "
            "the base URL they are resolved against; use an absolute URL or ask the operator",
            "CRON_HTTP_BASE_URL is not set, so relative httpRequest URLs are refused",
        )
    base = httpx.URL(base_url)
    # The path is appended to the base URL (which may itself end in a path such as /hooks).
    resolved = httpx.URL(base_url.rstrip("/") + url)
    if (resolved.scheme, resolved.raw_host, resolved.port) != (
        base.scheme,
        base.raw_host,
        base.port,
    ):
        raise TargetError(f"path {url!r} leaves the base URL's origin")
    # Stored jobs predate the creation-time check; trust only what stays under the base path.
    if not _under_base_path(resolved, base):
        raise TargetError(f"path {url!r} leaves the base URL's path {base.path!r}")
    return resolved, True


def under_base(url: httpx.URL, base_url: str) -> bool:
    """Whether `url` is on the base URL's origin and at or below its path (a trusted target)."""
    if not base_url.strip():
        return False
    base = httpx.URL(base_url)
    same_origin = (url.scheme, url.raw_host, url.port) == (base.scheme, base.raw_host, base.port)
    return same_origin and _under_base_path(url, base)


def _under_base_path(resolved: httpx.URL, base: httpx.URL) -> bool:
    """`resolved` is the base path itself or below it (on a `/` boundary), no dot segments."""
    # httpx has already removed raw dot segments; encoded ones would be resolved by the receiver.
    if has_dot_segment(resolved.raw_path.decode("ascii", "replace").partition("?")[0]):
        return False
    prefix = base.path.rstrip("/")
    path = resolved.path
    return not prefix or path == prefix or path.startswith(prefix + "/")


def check_host_allowed(url: httpx.URL, allowed_hosts: Iterable[str], exempt: bool) -> None:
    """Refuse a host outside the allow-list (unless `exempt`); raise TargetError."""
    host = host_of(url)
    if not exempt and not host_matches(host, allowed_hosts):
        raise TargetError(
            f"host {host!r} is not allowed", f"{host!r} is not in CRON_HTTP_ALLOWED_HOSTS"
        )


def check_address(address: IPAddress, allow_private: bool, host: str | None = None) -> None:
    """Refuse a non-public address unless private networks are allowed; raise TargetError."""
    reason = None if allow_private else blocked_reason(address)
    if reason is not None:
        subject = f"host {host!r} resolves to {address}" if host else f"address {address}"
        raise TargetError(f"{subject} which is {reason}; only public addresses are allowed")


def default_port(url: httpx.URL) -> int:
    """The URL's port, or its scheme's default."""
    return url.port or (443 if url.scheme == "https" else 80)


def own_endpoints(api_host: str, api_port: int, public_base_url: str) -> frozenset[Endpoint]:
    """Where the API itself answers: its public base URL and its listening address.

    A wildcard or loopback bind is reached through every loopback name and address.
    """
    endpoints: set[Endpoint] = set()
    if public_base_url.strip():
        public = httpx.URL(public_base_url)
        endpoints.add((host_of(public), default_port(public)))
    bind = normalize_host(api_host)
    hosts = {bind}
    if bind in _WILDCARD_BINDS or bind in _LOOPBACK_NAMES:
        hosts |= _LOOPBACK_NAMES | {"0.0.0.0", "::"}  # noqa: S104 - compared, not bound
    endpoints.update((host, api_port) for host in hosts if host)
    return frozenset(endpoints)


def check_not_own(
    url: httpx.URL, endpoints: frozenset[Endpoint], addresses: Iterable[IPAddress] = ()
) -> None:
    """Refuse a target that is the API itself, by name or by any resolved address.

    Any loopback (or unspecified) address on a port the API answers on through loopback counts:
    `127.0.0.2`, `[::ffff:127.0.0.1]` and `0.0.0.0` all reach a wildcard or loopback bind.
    """
    port = default_port(url)
    local_ports = {p for host, p in endpoints if host in _LOOPBACK_NAMES | _WILDCARD_BINDS}
    for candidate in {host_of(url), *(str(address) for address in addresses)}:
        if (candidate, port) in endpoints or (port in local_ports and _is_local(candidate)):
            raise TargetError(
                "this URL points at the cron service itself; jobs cannot call it",
                f"{candidate}:{port} is the API's own address (CRON_API_HOST/CRON_API_PORT or "
                "CRON_PUBLIC_BASE_URL)",
            )


def _is_local(host: str) -> bool:
    address = parse_ip(host)
    if address is None:
        return host in _LOOPBACK_NAMES
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified
