"""TokenVerifier: accepted algorithms and keys, and the reason given for each rejection."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth import InvalidTokenError, Principal, TokenVerifier
from shared.settings import Settings, SettingsError, load_settings
from tests.support import TEST_JWT_SECRET


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"jwt_secret": TEST_JWT_SECRET, **overrides}
    return load_settings({}, **values)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {"sub": "alice", "iat": now, "exp": now + 60, **overrides}
    return {key: value for key, value in values.items() if value is not None}


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), TEST_JWT_SECRET, algorithm="HS256")


def public_pem(private: Any) -> str:
    pem: bytes = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def test_hs256_token_gives_the_principal() -> None:
    verifier = TokenVerifier(make_settings())
    assert verifier.verify(hs256(roles=["admin", "ops"])) == Principal(
        "alice", frozenset({"admin", "ops"})
    )
    assert verifier.verify(hs256()).is_admin is False
    assert verifier.algorithms == ["HS256"]


def test_rs256_and_es256_public_keys() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_verifier = TokenVerifier(make_settings(jwt_secret=None, jwt_public_key=public_pem(rsa_key)))
    ec_verifier = TokenVerifier(make_settings(jwt_secret=None, jwt_public_key=public_pem(ec_key)))
    assert rsa_verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256")).sub == "alice"
    assert ec_verifier.verify(jwt.encode(claims(), ec_key, algorithm="ES256")).sub == "alice"
    with pytest.raises(InvalidTokenError, match="algorithm"):
        rsa_verifier.verify(jwt.encode(claims(), ec_key, algorithm="ES256"))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidTokenError, match="bad signature"):
        rsa_verifier.verify(jwt.encode(claims(), other, algorithm="RS256"))


# Tokens are minted when the test runs, not at collection: a long suite must not expire them.
@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda: hs256(exp=int(time.time()) - 100), "expired"),
        (lambda: hs256(nbf=int(time.time()) + 600), "not valid yet"),
        (lambda: hs256(iat=int(time.time()) + 600), "not valid yet"),
        (lambda: hs256(exp=None), "missing a required claim"),
        (lambda: hs256(sub=None), "missing a required claim"),
        (lambda: hs256(sub=" "), "`sub`"),
        (lambda: hs256(sub="x" * 300), "`sub`"),
        (lambda: hs256(roles=[1, 2]), "`roles`"),
        (lambda: hs256(roles={"admin": True}), "`roles`"),
        (lambda: jwt.encode(claims(), "", algorithm="none"), "algorithm"),
        (lambda: jwt.encode(claims(), "wrong-secret-" * 3, algorithm="HS256"), "bad signature"),
        (lambda: "a.b.c", "malformed"),
        (lambda: "", "malformed"),
    ],
)
def test_rejections_say_why(make_token: Callable[[], str], reason: str) -> None:
    with pytest.raises(InvalidTokenError, match=reason):
        TokenVerifier(make_settings()).verify(make_token())


def test_audience_and_issuer() -> None:
    verifier = TokenVerifier(make_settings(jwt_audience="api", jwt_issuer="auth"))
    assert verifier.verify(hs256(aud="api", iss="auth")).sub == "alice"
    with pytest.raises(InvalidTokenError, match="wrong audience"):
        verifier.verify(hs256(aud="web", iss="auth"))
    with pytest.raises(InvalidTokenError, match="wrong issuer"):
        verifier.verify(hs256(aud="api", iss="other"))
    # Without configured checks, a token's aud/iss are not held against it.
    assert TokenVerifier(make_settings()).verify(hs256(aud="anything")).sub == "alice"


def test_configuration_errors() -> None:
    with pytest.raises(SettingsError, match="CRON_JWT_SECRET"):
        TokenVerifier(make_settings(jwt_secret=None))
    with pytest.raises(SettingsError, match="CRON_JWT_PUBLIC_KEY"):
        TokenVerifier(make_settings(jwt_secret=None, jwt_public_key="not a key"))


def test_a_public_key_written_on_one_line_with_backslash_n_verifies_tokens() -> None:
    # The form .env.example documents: the whole PEM on one line, `\n` between its lines.
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    one_line = public_pem(rsa_key).strip().replace("\n", "\\n")
    verifier = TokenVerifier(load_settings({"CRON_JWT_PUBLIC_KEY": one_line}))
    assert verifier.algorithms == ["RS256"]
    assert verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256")).sub == "alice"
