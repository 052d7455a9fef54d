"""Sign-in, the session cookie, CSRF, and who is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.auth import Principal
from api.dashboard.session import COOKIE_NAME, SessionCodec
from tests.integration.api.dashboard.helpers import DashboardSession


def _set_cookie(response, name: str):
    headers = [value for value in response.headers.get_list("set-cookie") if value.startswith(name)]
    assert headers, f"no {name} cookie set"
    return headers[0]


async def _with_session(browser: DashboardSession, value: str):
    return await browser.http.get("/dashboard/", headers={"cookie": f"{COOKIE_NAME}={value}"})


async def test_admin_signs_in_with_a_strict_http_only_expiring_cookie(
    browser: DashboardSession,
) -> None:
    response = await browser.sign_in()
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/"
    cookie = _set_cookie(response, COOKIE_NAME).lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/dashboard" in cookie
    assert "max-age=" in cookie
    assert "secure" not in cookie  # plain http here; see the TLS test
    page = await browser.get("/dashboard/")
    assert page.status_code == 200
    assert "ops-admin" in page.text


async def test_the_cookie_is_secure_over_tls(browser: DashboardSession) -> None:
    browser.http.base_url = "https://testserver"
    response = await browser.sign_in()
    assert "secure" in _set_cookie(response, COOKIE_NAME).lower()


async def test_session_never_outlives_the_pasted_token(browser: DashboardSession) -> None:
    await browser.get("/dashboard/sign-in")
    token = browser.token("ops-admin", ["admin"], ttl=120)
    response = await browser.post("/dashboard/sign-in", {"token": token})
    max_age = int(_set_cookie(response, COOKIE_NAME).split("Max-Age=")[1].split(";")[0])
    assert 60 <= max_age <= 120


async def test_a_non_admin_token_is_refused_with_403_and_no_session(
    browser: DashboardSession,
) -> None:
    response = await browser.sign_in(sub="alice", roles=[])
    assert response.status_code == 403
    assert "admin role" in response.text
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")
    assert (await browser.get("/dashboard/jobs/")).status_code == 303


async def test_an_invalid_token_is_refused_on_the_sign_in_page(browser: DashboardSession) -> None:
    await browser.get("/dashboard/sign-in")
    response = await browser.post("/dashboard/sign-in", {"token": "not-a-jwt"})
    assert response.status_code == 401
    assert "That token was refused" in response.text
    expired = browser.token("ops-admin", ["admin"], ttl=-600)
    response = await browser.post("/dashboard/sign-in", {"token": expired})
    assert response.status_code == 401
    assert "expired" in response.text


async def test_pages_send_strangers_to_sign_in_and_back(browser: DashboardSession) -> None:
    response = await browser.get("/dashboard/jobs/?owner=alice")
    assert response.status_code == 303
    assert (
        response.headers["location"]
        == "/dashboard/sign-in?next=%2Fdashboard%2Fjobs%3Fowner%3Dalice"
    )
    await browser.get(response.headers["location"])
    token = browser.token("ops-admin", ["admin"])
    signed_in = await browser.post(
        "/dashboard/sign-in", {"token": token, "next": "/dashboard/jobs/?owner=alice"}
    )
    assert signed_in.headers["location"] == "/dashboard/jobs/?owner=alice"


async def test_sign_in_never_redirects_off_the_dashboard(browser: DashboardSession) -> None:
    await browser.get("/dashboard/sign-in")
    token = browser.token("ops-admin", ["admin"])
    targets = ("//evil.example/", "https://evil.example/", "/dashboard//evil.example", "/api/cron")
    for target in targets:
        response = await browser.post("/dashboard/sign-in", {"token": token, "next": target})
        assert response.headers["location"] == "/dashboard/", target


async def test_expired_forged_or_foreign_cookies_send_you_to_sign_in(
    browser: DashboardSession,
) -> None:
    codec = SessionCodec.of(browser.settings)
    admin = Principal("ops-admin", frozenset({"admin"}))
    expired, _ = codec.encode(admin, now=datetime.now(UTC) - timedelta(hours=3))
    forged, _ = SessionCodec(b"another key" * 4, timedelta(hours=1)).encode(admin)
    api_token = browser.token("ops-admin", ["admin"])  # a bearer token is not a session
    valid, _ = codec.encode(admin)
    assert (await _with_session(browser, valid)).status_code == 200  # the way it is sent works
    for value in (expired, forged, api_token, "garbage"):
        response = await _with_session(browser, value)
        assert response.status_code == 303, value
        assert response.headers["location"].startswith("/dashboard/sign-in")


async def test_a_session_with_another_role_gets_the_403_page(browser: DashboardSession) -> None:
    value, _ = SessionCodec.of(browser.settings).encode(Principal("alice", frozenset({"user"})))
    response = await _with_session(browser, value)
    assert response.status_code == 403
    assert "for admins" in response.text


async def test_posts_without_the_csrf_token_are_refused(admin: DashboardSession) -> None:
    for path in ("/dashboard/sign-out", "/dashboard/sign-in"):
        response = await admin.http.post(path, data={"token": "x"})
        assert response.status_code == 403, path
        assert "CSRF" in response.text
    forged = await admin.http.post("/dashboard/sign-out", data={"_csrf_token": "0" * 128})
    assert forged.status_code == 403
    assert (await admin.get("/dashboard/")).status_code == 200  # still signed in


async def test_sign_out_ends_the_session(admin: DashboardSession) -> None:
    await admin.get("/dashboard/")
    response = await admin.post("/dashboard/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sign-in?signed_out=1"
    assert (await admin.get("/dashboard/")).status_code == 303


async def test_the_session_cookie_does_not_open_the_api(admin: DashboardSession) -> None:
    response = await admin.http.get("/api/cron/jobs")
    assert response.status_code == 401


async def test_pages_carry_strict_security_headers(admin: DashboardSession) -> None:
    response = await admin.get("/dashboard/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
