"""The httpRequest network policy: addresses, allowed hosts and URL shape."""

from __future__ import annotations

from ipaddress import ip_address

import httpx
import pytest

from shared import netguard


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.10.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.7", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("::127.0.0.1", "reserved"),
        ("64:ff9b::7f00:1", "loopback"),
        ("fd00::1", "unique-local"),
        ("fc12:3456::1", "unique-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("2002:7f00:1::1", "6to4"),
        ("2001::1", "reserved"),
    ],
)
def test_non_public_addresses_are_named(address: str, reason: str) -> None:
    assert netguard.blocked_reason(ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "100.128.0.1",
        "172.32.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert netguard.blocked_reason(ip_address(address)) is None


def test_check_address_explains_and_can_be_relaxed() -> None:
    with pytest.raises(
        netguard.TargetError, match=r"'localhost' resolves to 127\.0\.0\.1 .*loopback"
    ):
        netguard.check_address(ip_address("127.0.0.1"), allow_private=False, host="localhost")
    with pytest.raises(netguard.TargetError, match=r"address 10\.0\.0\.1 which is private"):
        netguard.check_address(ip_address("10.0.0.1"), allow_private=False)
    netguard.check_address(ip_address("10.0.0.1"), allow_private=True)


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("example.com", ["example.com"], True),
        ("EXAMPLE.com.", ["example.com"], True),
        ("api.example.com", ["example.com"], False),
        ("api.example.com", ["*.example.com"], True),
        ("a.b.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], False),
        ("badexample.com", ["*.example.com"], False),
        ("example.com.evil.net", ["example.com"], False),
        ("xn--bcher-kva.de", ["xn--bcher-kva.de"], True),
        ("::1", ["[::1]"], True),
        ("0:0::1", ["::1"], True),
        ("anything.net", [], False),
        ("anything.net", ["*"], False),
    ],
)
def test_host_matching(host: str, patterns: list[str], allowed: bool) -> None:
    assert netguard.host_matches(host, patterns) is allowed


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://example.com:8080/a?b=c#frag",
        "https://bücher.de/x",
        "http://127.0.0.1/",
        "http://[2606:4700::1111]/",
        "/hooks/nightly",
        "/",
        "/.well-known/x",
        "/a..b/c.",
        "/x?next=../y",
        "/x#../y",
    ],
)
def test_url_shapes_accepted(url: str) -> None:
    assert netguard.check_url_shape(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "absolute http:// or https://"),
        ("example.com/x", "absolute http:// or https://"),
        ("hooks/x", "absolute http:// or https://"),
        ("http:///x", "absolute http:// or https://"),
        ("//evil.com/x", "single '/'"),
        ("http://user@example.com/", "credentials"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://example.com\\@evil.com/", "backslashes"),
        ("http://exa mple.com/", "spaces"),
        ("http://example.com/\r\nX: y", "control characters"),
        ("http://example.com:99999/", "port"),
        ("http://127.1/", "ambiguous numeric"),
        ("http://2130706433/", "ambiguous numeric"),
        ("http://0x7f000001/", "ambiguous numeric"),
        ("http://0177.0.0.1/", "not a valid URL"),
        ("http://017.0.0.1/", "not a valid URL"),
        ("http://%31%32%37.0.0.1/", "not a valid host name"),
        ("http://[fe80::1%25eth0]/", "not a valid host name"),
        ("http://a_b-.example.com/", "not a valid host name"),
        ("/../../x", "'..' segments"),
        ("/hooks/..", "'..' segments"),
        ("/a/./b", "'..' segments"),
        ("/%2e%2e/x", "'..' segments"),
        ("/%2E%2e/x", "'..' segments"),
        ("/.%2E/x", "'..' segments"),
        ("/%2e/x", "'..' segments"),
        ("/a/..%2f..%2fx", "'..' segments"),
        ("/a/..%2F/x", "'..' segments"),
        ("/..;jsessionid=1/x", "'..' segments"),
        ("/x/..?q=1", "'..' segments"),
    ],
)
def test_url_shapes_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        netguard.check_url_shape(url)


def test_paths_are_appended_to_the_trusted_base_url() -> None:
    assert netguard.resolve_url("/hooks/a?x=1", "http://127.0.0.1:8000") == (
        httpx.URL("http://127.0.0.1:8000/hooks/a?x=1"),
        True,
    )
    assert netguard.resolve_url("/a", "https://app.example.com/base/")[0] == httpx.URL(
        "https://app.example.com/base/a"
    )
    assert netguard.resolve_url("https://example.com/x", "http://127.0.0.1:8000") == (
        httpx.URL("https://example.com/x"),
        False,
    )


@pytest.mark.parametrize(
    "path", ["/../../x", "/../hooksevil", "/%2e%2e/x", "/a/%2E%2E/%2e%2e/x", "/..%2f..%2fx"]
)
def test_paths_that_climb_out_of_the_base_path_are_refused(path: str) -> None:
    # Jobs stored before the creation-time check are caught when they run.
    with pytest.raises(netguard.TargetError, match="leaves the base URL's path '/hooks'"):
        netguard.resolve_url(path, "http://127.0.0.1:8000/hooks")


def test_paths_under_the_base_path_stay_trusted() -> None:
    base = "http://127.0.0.1:8000/hooks/"
    assert netguard.resolve_url("/", base)[0] == httpx.URL("http://127.0.0.1:8000/hooks/")
    assert netguard.resolve_url("/a/b?x=/../", base) == (
        httpx.URL("http://127.0.0.1:8000/hooks/a/b?x=/../"),
        True,
    )


def test_allow_list_check_names_the_host_and_honours_the_exemption() -> None:
    url = httpx.URL("https://Evil.example.net/x")
    with pytest.raises(netguard.TargetError) as refused:
        netguard.check_host_allowed(url, ["example.com"], exempt=False)
    # The owner reads "not allowed"; the setting that decided it is for the operator's log.
    assert str(refused.value) == "host 'evil.example.net' is not allowed"
    assert "CRON_HTTP_ALLOWED_HOSTS" in refused.value.operator_detail
    netguard.check_host_allowed(url, ["example.com"], exempt=True)
    netguard.check_host_allowed(url, ["*.example.net"], exempt=False)


@pytest.mark.parametrize(
    ("url", "addresses", "own"),
    [
        ("http://127.0.0.1:8000/x", [], True),
        ("http://localhost:8000/x", [], True),
        ("http://127.0.0.2:8000/x", [], True),  # any loopback address reaches the bind
        ("http://[::ffff:127.0.0.1]:8000/x", [], True),
        ("http://0.0.0.0:8000/x", [], True),
        ("http://alias.test:8000/x", ["127.0.0.1"], True),  # by a resolved address
        ("https://cron.example.com/api", [], True),  # CRON_PUBLIC_BASE_URL, default port
        ("http://cron.example.com/api", [], False),  # another port (80, not 443)
        ("http://127.0.0.1:8001/x", [], False),
        ("http://alias.test:8000/x", ["127.0.0.3"], True),
        ("http://hooks.test:8000/x", [], False),
    ],
)
def test_the_api_is_recognised_by_name_address_and_port(
    url: str, addresses: list[str], own: bool
) -> None:
    endpoints = netguard.own_endpoints("127.0.0.1", 8000, "https://cron.example.com")
    resolved = [address for text in addresses if (address := netguard.parse_ip(text))]
    if own:
        with pytest.raises(netguard.TargetError, match="points at the cron service itself"):
            netguard.check_not_own(httpx.URL(url), endpoints, resolved)
    else:
        netguard.check_not_own(httpx.URL(url), endpoints, resolved)
