"""401 with `WWW-Authenticate: Bearer` for every unusable token, on every protected endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from tests.integration.api.helpers import ALICE, Api, field_errors
from tests.support import TEST_JWT_SECRET

PROTECTED = [
    ("GET", "/jobs"),
    ("POST", "/jobs"),
    ("GET", "/jobs/6740a1f2c3d4e5f601234567"),
    ("PUT", "/jobs/6740a1f2c3d4e5f601234567"),
    ("PATCH", "/jobs/6740a1f2c3d4e5f601234567"),
    ("DELETE", "/jobs/6740a1f2c3d4e5f601234567"),
    ("POST", "/jobs/6740a1f2c3d4e5f601234567/run-now"),
    ("GET", "/jobs/6740a1f2c3d4e5f601234567/runs"),
    ("GET", "/jobs/6740a1f2c3d4e5f601234567/reports"),
    ("GET", "/job-types"),
    ("POST", "/preview"),
]


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": ALICE, "roles": [], "iat": now, "exp": now + 3600}
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def signed(payload: dict[str, Any], key: str = TEST_JWT_SECRET, **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm="HS256", headers=headers or None)


def hand_signed(payload: dict[str, Any], key: bytes, algorithm: str = "HS256") -> str:
    """An HMAC token built by hand (PyJWT refuses some of these keys / algorithms)."""
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[algorithm]

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": algorithm, "typ": "JWT"}).encode())
    body = part(json.dumps(payload).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), digest).digest()
    return f"{header}.{body}.{part(signature)}"


def unsigned(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, "", algorithm="none")


BAD_AUTHORIZATION = {
    "missing": None,
    "empty": "",
    "basic scheme": "Basic YWxpY2U6cGFzc3dvcmQ=",
    "bearer without token": "Bearer ",
    "not a jwt": "Bearer not.a.jwt",
    "garbage": "Bearer " + "x" * 300,
    "alg none": "Bearer " + unsigned(claims()),
    "alg none with admin": "Bearer " + unsigned(claims(roles=["admin"])),
    "expired": "Bearer " + signed(claims(exp=int(time.time()) - 3600)),
    "bad signature": "Bearer " + signed(claims(), key="another-secret-another-secret-0123"),
    "tampered payload": "Bearer "
    + signed(claims()).split(".")[0]
    + "."
    + jwt.utils.base64url_encode(b'{"sub":"bob-52d9","exp":9999999999}').decode()
    + "."
    + signed(claims()).split(".")[2],
    "no exp": "Bearer " + signed(claims(exp=None)),
    "no sub": "Bearer " + signed(claims(sub=None)),
    "empty sub": "Bearer " + signed(claims(sub="")),
    "numeric sub": "Bearer " + signed(claims(sub=42)),
    "roles not a list": "Bearer " + signed(claims(roles="admin")),
    "nbf in the future": "Bearer " + signed(claims(nbf=int(time.time()) + 3600)),
    "iat in the future": "Bearer " + signed(claims(iat=int(time.time()) + 3600)),
    "HS512 not allowed": "Bearer " + hand_signed(claims(), TEST_JWT_SECRET.encode(), "HS512"),
}


@pytest.mark.parametrize("case", list(BAD_AUTHORIZATION))
async def test_unusable_tokens_answer_401_with_challenge(api: Api, case: str) -> None:
    value = BAD_AUTHORIZATION[case]
    headers = {} if value is None else {"Authorization": value}
    response = await api.request("GET", "/jobs", sub=None, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert field_errors(response) == {}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_protected_endpoint_needs_a_token(api: Api, method: str, path: str) -> None:
    response = await api.request(method, path, sub=None, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_leeway_accepts_slightly_skewed_clocks(api: Api) -> None:
    token = signed(claims(iat=int(time.time()) + 5, nbf=int(time.time()) + 5))
    response = await api.request(
        "GET", "/jobs", sub=None, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


async def test_audience_and_issuer_are_enforced_when_configured(make_api: Any) -> None:
    api: Api = await make_api(jwt_audience="cron-api", jwt_issuer="https://auth.example")
    good = api.token(ALICE)  # minted with the configured iss/aud
    assert (await api.request("GET", "/jobs", sub=None, headers=_bearer(good))).status_code == 200
    for bad in (
        signed(claims(aud="other-api", iss="https://auth.example")),
        signed(claims(iss="https://auth.example")),
        signed(claims(aud="cron-api", iss="https://evil.example")),
        signed(claims(aud="cron-api")),
    ):
        response = await api.request("GET", "/jobs", sub=None, headers=_bearer(bad))
        assert response.status_code == 401, bad
        assert "invalid_token" in response.headers["WWW-Authenticate"]


async def test_public_key_tokens_are_verified(make_api: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    api: Api = await make_api(jwt_public_key=pem.decode(), jwt_secret=None)
    good = jwt.encode(claims(), private, algorithm="ES256")
    assert (await api.request("GET", "/jobs", sub=None, headers=_bearer(good))).status_code == 200
    # An HS256 token "signed" with the public key as secret: the classic algorithm confusion.
    confused = "Bearer " + hand_signed(claims(), pem)
    response = await api.request("GET", "/jobs", sub=None, headers={"Authorization": confused})
    assert response.status_code == 401


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
