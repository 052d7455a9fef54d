"""Local test tokens: signed with the configured secret, carrying sub, roles, iss and aud."""

from __future__ import annotations

import jwt
import pytest

from shared.settings import load_settings
from shared.tokens import TokenError, mint_token

SECRET = "unit-test-secret-0123456789abcdef0123"


def test_token_carries_subject_roles_and_expiry() -> None:
    settings = load_settings({}, jwt_secret=SECRET, jwt_issuer="auth", jwt_audience="app")
    token = mint_token(settings, "alice", ["admin"], ttl_seconds=60, now=1_700_000_000)
    claims = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience="app",
        issuer="auth",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "sub": "alice",
        "roles": ["admin"],
        "iat": 1_700_000_000,
        "exp": 1_700_000_060,
        "iss": "auth",
        "aud": "app",
    }


def test_minting_needs_the_shared_secret() -> None:
    with pytest.raises(TokenError, match="CRON_JWT_SECRET"):
        mint_token(load_settings({}), "alice")


def test_subject_is_required() -> None:
    with pytest.raises(TokenError, match="subject"):
        mint_token(load_settings({}, jwt_secret=SECRET), "")
