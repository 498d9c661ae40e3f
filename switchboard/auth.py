"""Who is calling: the Caller from a request's headers, in one of three modes behind one port.

- `jwt`: a bearer token from any OIDC issuer, checked for issuer, audience, expiry and an
  asymmetric signature by a key from the issuer's JWKS (PyJWT's JWKS client, keys cached).
- `dev`: the server is its own OIDC issuer: an RS256 key pair kept under the data dir signs
  tokens from `POST /api/dev/login`, and they are checked by the very same `TokenVerifier`.
- `easyauth`: App Service authentication's principal headers, which the platform strips from
  client requests and sets itself; trusted only when it says Easy Auth is on (see settings).

Any failure is `Unauthenticated` (401 with `WWW-Authenticate: Bearer`); a JWKS endpoint that cannot
be reached is `DependencyUnavailable` (503), since the caller's token may be fine.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from switchboard import errors
from switchboard.keyfiles import load_or_create_private_key
from switchboard.services.caller import Caller

# Asymmetric algorithms only: `none` and the HMAC family (HS*) are refused before any key lookup,
# which also rules out the classic RSA-public-key-as-HMAC-secret confusion.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
CLOCK_SKEW_SECONDS = 60
# A user id becomes a document id and a URL path segment: Cosmos ids cannot hold / \ ? #.
_USER_ID = re.compile(r"^[^/\\?#\s\x00-\x1f\x7f]{1,128}$")

DEV_ISSUER = "switchboard-dev"
DEV_AUDIENCE = "switchboard"
DEV_TOKEN_SECONDS = 3600


class Authenticator(Protocol):
    """Finds the caller in a request's headers or raises Unauthenticated."""

    async def authenticate(self, headers: Mapping[str, str]) -> Caller: ...


class KeySource(Protocol):
    """Where a token's verification key comes from, by its `kid`."""

    async def signing_key(self, kid: str | None) -> jwt.PyJWK: ...


class StaticKeySource:
    """Keys from a JWKS held in memory (dev mode's own keys; tests)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = jwt.PyJWKSet.from_dict(dict(jwks))

    async def signing_key(self, kid: str | None) -> jwt.PyJWK:
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key
        raise errors.Unauthenticated("The token was signed with an unknown key.")


class RemoteJwksKeySource:
    """Keys from an issuer's JWKS URL (or its discovery document), fetched lazily and cached.

    PyJWKClient is synchronous, so fetches run in a worker thread; a key found before is served
    from memory for `KEY_LIFETIME_SECONDS` (then looked up again, so a key the issuer withdrew
    stops working within that time), without the thread hop.
    """

    KEY_LIFETIME_SECONDS = 3600.0

    def __init__(self, issuer: str, jwks_url: str | None = None, *, timeout: float = 5.0) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url or None
        self._timeout = timeout
        self._client: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()
        self._known: dict[str | None, tuple[float, jwt.PyJWK]] = {}

    async def signing_key(self, kid: str | None) -> jwt.PyJWK:
        cached = self._known.get(kid)
        if cached is not None and time.monotonic() - cached[0] < self.KEY_LIFETIME_SECONDS:
            return cached[1]
        key = await self._fetch(kid)
        self._known[kid] = (time.monotonic(), key)
        return key

    async def _fetch(self, kid: str | None) -> jwt.PyJWK:
        client = self._client or await self._make_client()
        try:
            if kid is None:
                keys = await asyncio.to_thread(client.get_signing_keys)
                return keys[0]
            return await asyncio.to_thread(client.get_signing_key, kid)
        except jwt.PyJWKClientConnectionError:
            raise errors.DependencyUnavailable(
                "the sign-in provider's keys", retry_after=5
            ) from None
        except jwt.PyJWKClientError:
            raise errors.Unauthenticated("The token was signed with an unknown key.") from None

    async def _make_client(self) -> jwt.PyJWKClient:
        async with self._lock:
            if self._client is None:
                url = self._jwks_url
                if url is None:
                    url = await asyncio.to_thread(self._discover_jwks_url)
                self._client = jwt.PyJWKClient(
                    _checked_url(url), cache_keys=True, lifespan=3600, timeout=self._timeout
                )
            return self._client

    def _discover_jwks_url(self) -> str:  # blocking: run in a thread
        url = _checked_url(self._issuer.rstrip("/") + "/.well-known/openid-configuration")
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as resp:  # noqa: S310 (scheme checked)
                document = json.load(resp)
            return str(document["jwks_uri"])
        except (OSError, ValueError, KeyError):
            raise errors.DependencyUnavailable(
                "the sign-in provider's keys", retry_after=5
            ) from None


def _checked_url(url: str) -> str:
    parsed = urlparse(url)
    local = parsed.hostname in {"localhost", "127.0.0.1", "::1"}
    if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
        raise errors.ConfigurationError("AUTH_JWKS_URL/AUTH_ISSUER must be https URLs")
    return url


class TokenVerifier:
    """Checks a bearer token (signature, issuer, audience, expiry) and names its caller."""

    def __init__(self, keys: KeySource, issuer: str, audience: str, user_claim: str = "sub"):
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._user_claim = user_claim

    async def verify(self, token: str) -> Caller:
        header = _unverified_header(token)
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise errors.Unauthenticated("The token's signing algorithm is not accepted.")
        key = await self._keys.signing_key(header.get("kid"))
        if key.algorithm_name not in (alg, None) and key.key_type != "OKP":
            raise errors.Unauthenticated("The token's algorithm does not match its key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise errors.Unauthenticated("The token has expired.") from None
        except jwt.InvalidAudienceError:
            raise errors.Unauthenticated("The token is for another audience.") from None
        except jwt.InvalidIssuerError:
            raise errors.Unauthenticated("The token is from another issuer.") from None
        except jwt.PyJWTError:
            raise errors.Unauthenticated("The token is not valid.") from None
        return _caller(claims.get(self._user_claim), claims.get("name"))


class BearerAuthenticator:
    """`Authorization: Bearer <token>` checked by a TokenVerifier (jwt and dev modes)."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        value = headers.get("authorization") or headers.get("Authorization") or ""
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.MissingCredentials("Send an app token as 'Authorization: Bearer <token>'.")
        return await self._verifier.verify(token.strip())


class EasyAuthAuthenticator:
    """The caller from App Service authentication's `X-MS-CLIENT-PRINCIPAL*` headers."""

    def __init__(self, user_claim: str = "sub") -> None:
        self._user_claim = user_claim

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        encoded = _header(headers, "x-ms-client-principal")
        if not encoded:
            raise errors.MissingCredentials("Sign in through the app's authentication first.")
        try:
            principal = json.loads(base64.b64decode(encoded, validate=True))
            claims = {c["typ"]: c["val"] for c in principal.get("claims", [])}
        except (ValueError, binascii.Error, TypeError, KeyError, AttributeError):
            raise errors.Unauthenticated("The client principal header is malformed.") from None
        # The platform's principal id is the user's object id; a configured claim wins over it.
        user_id = claims.get(self._user_claim) if self._user_claim != "sub" else None
        user_id = user_id or _header(headers, "x-ms-client-principal-id") or claims.get("sub")
        name = claims.get("name") or _header(headers, "x-ms-client-principal-name")
        return _caller(user_id, name)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name) or headers.get(name.upper())


def _unverified_header(token: str) -> dict[str, Any]:
    """The token's JOSE header, read from its first segment only, to choose the key.

    Not `jwt.get_unverified_header`: that decodes and checks every segment, and `jwt.decode`
    then does it all again (the largest cost of a token request). `jwt.decode` still checks
    the whole token, header included, against the key this header picks.
    """
    try:
        segment = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: absurdly nested JSON
        raise errors.Unauthenticated("The bearer token is not a JWT.") from None
    if not isinstance(header, dict) or token.count(".") != 2:
        raise errors.Unauthenticated("The bearer token is not a JWT.")
    return header


def _caller(user_id: Any, name: Any) -> Caller:
    if not isinstance(user_id, str) or not _USER_ID.match(user_id):
        raise errors.Unauthenticated("The token's subject is missing or not usable as a user id.")
    display = name.strip()[:64] if isinstance(name, str) and name.strip() else None
    return Caller(user_id=user_id, name=display)


class DevTokenIssuer:
    """Dev mode's own OIDC issuer: an RS256 key kept under the data dir, and its JWKS."""

    KEY_FILE = "dev-auth-key.pem"

    def __init__(self, data_dir: Path, issuer: str = DEV_ISSUER, audience: str = DEV_AUDIENCE):
        self.issuer = issuer
        self.audience = audience
        self._private_key = load_or_create_private_key(
            data_dir / self.KEY_FILE,
            rsa.RSAPrivateKey,
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._private_key.public_key()))
        self.key_id = _thumbprint(public_jwk)
        self._jwks = {"keys": [{**public_jwk, "kid": self.key_id, "alg": "RS256", "use": "sig"}]}

    def jwks(self) -> dict[str, Any]:
        return self._jwks

    def key_source(self) -> StaticKeySource:
        return StaticKeySource(self._jwks)

    def issue(self, user_id: str, display_name: str | None) -> tuple[str, int]:
        """An app token for `user_id` and its lifetime in seconds."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "nbf": now,
            "exp": now + DEV_TOKEN_SECONDS,
        }
        if display_name:
            claims["name"] = display_name
        token = jwt.encode(
            claims, self._private_key, algorithm="RS256", headers={"kid": self.key_id}
        )
        return token, DEV_TOKEN_SECONDS


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint, so the kid changes exactly when the key does."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
