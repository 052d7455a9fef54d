"""Bearer JWT verification (HS256 secret or RS256/ES256 public key) and the auth middleware."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Scopes

from api.errors import INVALID_TOKEN_CHALLENGE, WWW_AUTHENTICATE
from shared.settings import Settings, SettingsError, parse_public_key

ADMIN_ROLE: Final = "admin"
SUBJECT_MAX_LENGTH: Final = 256
ROLES_MAX: Final = 64
_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Principal:
    """The caller: `sub` owns jobs; the `admin` role sees and manages everybody's."""

    sub: str
    roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        """Whether the token carries the admin role."""
        return ADMIN_ROLE in self.roles


class InvalidTokenError(ValueError):
    """The token cannot be trusted; the message is safe to show."""


class TokenVerifier:
    """Verifies tokens of the configured auth server; never accepts `alg: none`."""

    def __init__(self, settings: Settings) -> None:
        self._keys: dict[str, Any] = {}
        if settings.jwt_secret is not None:
            self._keys["HS256"] = settings.jwt_secret.get_secret_value()
        if settings.jwt_public_key:
            public_key = _load_public_key(settings.jwt_public_key)
            algorithm = "RS256" if isinstance(public_key, RSAPublicKey) else "ES256"
            self._keys[algorithm] = public_key
        if not self._keys:
            raise SettingsError("set CRON_JWT_SECRET (HS256) or CRON_JWT_PUBLIC_KEY (RS256/ES256)")
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds

    @property
    def algorithms(self) -> list[str]:
        """The accepted `alg` values."""
        return sorted(self._keys)

    def verify(self, token: str) -> Principal:
        """The caller named by a valid token; InvalidTokenError otherwise."""
        try:
            algorithm = str(jwt.get_unverified_header(token).get("alg"))
            key = self._keys.get(algorithm)
            if key is None:
                raise InvalidTokenError(f"token algorithm must be one of {self.algorithms}")
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except InvalidTokenError:
            raise
        except jwt.PyJWTError as error:
            raise InvalidTokenError(f"invalid token: {_reason(error)}") from None
        except (ValueError, TypeError, KeyError):  # odd claim types PyJWT does not wrap
            raise InvalidTokenError("invalid token") from None
        return Principal(sub=_subject(claims.get("sub")), roles=_roles(claims.get("roles")))


def _load_public_key(pem: str) -> RSAPublicKey | EllipticCurvePublicKey:
    # The settings validator already parsed it (and turned literal `\n` into newlines).
    try:
        return parse_public_key(pem)
    except ValueError as error:
        raise SettingsError(f"CRON_JWT_PUBLIC_KEY: {error}") from None


def _reason(error: jwt.PyJWTError) -> str:
    """A short, fixed-vocabulary reason (no token content echoed back)."""
    reasons: Sequence[tuple[type[jwt.PyJWTError], str]] = (
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "not valid yet (nbf/iat in the future)"),
        (jwt.InvalidAudienceError, "wrong audience"),
        (jwt.InvalidIssuerError, "wrong issuer"),
        (jwt.MissingRequiredClaimError, "missing a required claim (exp, sub)"),
        (jwt.InvalidSignatureError, "bad signature"),
        (jwt.DecodeError, "malformed"),
    )
    for kind, reason in reasons:
        if isinstance(error, kind):
            return reason
    return "rejected"


def _subject(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > SUBJECT_MAX_LENGTH
        or _CONTROL_CHARACTERS.search(value)
    ):
        raise InvalidTokenError("invalid token: `sub` must be a non-empty one-line string")
    return value


def _roles(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if (
        not isinstance(value, list)
        or len(value) > ROLES_MAX
        or not all(isinstance(role, str) for role in value)
    ):
        raise InvalidTokenError("invalid token: `roles` must be a list of strings")
    return frozenset(value)


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` to the Principal of a valid bearer token, else answers 401."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        exclude: str | list[str] | None = None,
        scopes: Scopes | None = None,
    ) -> None:
        super().__init__(app=app, exclude=exclude, scopes=scopes)
        self.verifier = verifier

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Verify `Authorization: Bearer <jwt>`."""
        header = connection.headers.get("authorization")
        if not header:
            raise NotAuthorizedException("missing bearer token")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException(
                "the Authorization header must be `Bearer <token>`",
                headers={WWW_AUTHENTICATE: INVALID_TOKEN_CHALLENGE},
            )
        try:
            principal = self.verifier.verify(token)
        except InvalidTokenError as error:
            raise NotAuthorizedException(
                str(error), headers={WWW_AUTHENTICATE: INVALID_TOKEN_CHALLENGE}
            ) from None
        return AuthenticationResult(user=principal, auth=token)
