"""Who is calling: the Caller from a request's headers, in one of three modes behind one port.

- `jwt`: a bearer token from any OIDC issuer, checked for issuer, audience, expiry and an
  asymmetric signature by a key from the issuer's JWKS (fetched once for all waiters, cached,
  backed off after a failure).
- `dev`: the server is its own OIDC issuer (`switchboard/dev/issuer.py`, development only): an
  RS256 key pair kept under the data dir signs tokens from `POST /api/dev/login`, and they are
  checked by the very same `TokenVerifier` through a `StaticKeySource`.
- `easyauth`: App Service authentication's principal headers, which the platform strips from
  client requests and sets itself; trusted only when it says Easy Auth is on (see settings).

Any failure is `Unauthenticated` (401 with `WWW-Authenticate: Bearer`); a JWKS endpoint that cannot
be reached or gives no usable key is `DependencyUnavailable` (503), since the caller's token
may be fine. Token subjects must pass the one id rule (switchboard.ids).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http.client
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlparse

import jwt

from switchboard import errors, ids
from switchboard.services.caller import Caller

# Asymmetric algorithms only: `none` and the HMAC family (HS*) are refused before any key lookup,
# which also rules out the classic RSA-public-key-as-HMAC-secret confusion.
log = logging.getLogger("switchboard.auth")

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
CLOCK_SKEW_SECONDS = 60
# Easy Auth's principal header is bounded before it is decoded: the platform's own headers are a
# few KiB, and a deeply nested one made json.loads raise RecursionError (a 500).
MAX_PRINCIPAL_HEADER_CHARS = 16 * 1024
MAX_PRINCIPAL_JSON_DEPTH = 8


class LocalIssuer(Protocol):
    """An OIDC issuer this process runs itself (dev mode's, `switchboard/dev/issuer.py`): the
    verifier trusts its keys, and the dev routes sign with it."""

    issuer: str
    audience: str

    def key_source(self) -> StaticKeySource: ...

    def issue(self, user_id: str, display_name: str | None) -> tuple[str, int]:
        """An app token for `user_id`, and its lifetime in seconds."""
        ...

    def jwks(self) -> dict[str, Any]: ...


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

    Anyone can make a request reach this class (the key lookup comes before any signature is
    checked), so a slow, failing or nonsensical issuer must not be amplified:
    - one fetch at a time: the first request that needs keys starts it as a task, and every
      request that needs keys meanwhile awaits that same task;
    - a request waits at most `WAIT_SECONDS` for it (the fetch itself goes on), then gets 503;
    - after a failed fetch, requests fail fast with 503 for `RETRY_AFTER_SECONDS` (no fetch);
    - an answer that is not a usable key set (HTML, no keys, malformed keys) is such a failure,
      logged once per fetch naming the problem, never a 500;
    - a kid not in a key set fetched less than `MIN_REFETCH_SECONDS` ago is refused (401)
      without a fetch, so made-up kids cannot drive fetches.
    Keys are served from memory for `KEY_LIFETIME_SECONDS`, then fetched again, so a key the
    issuer withdrew stops working within that time.
    """

    KEY_LIFETIME_SECONDS = 3600.0
    MIN_REFETCH_SECONDS = 60.0
    RETRY_AFTER_SECONDS = 10.0
    WAIT_SECONDS = 3.0
    MAX_DOCUMENT_BYTES = 1 << 20

    def __init__(self, issuer: str, jwks_url: str | None = None, *, timeout: float = 5.0) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url or None
        self._timeout = timeout
        self._keys: list[jwt.PyJWK] = []
        self._fetched_at = -float("inf")
        self._failed_until = -float("inf")
        self._fetch: asyncio.Task[list[jwt.PyJWK]] | None = None

    async def signing_key(self, kid: str | None) -> jwt.PyJWK:
        if time.monotonic() - self._fetched_at >= self.KEY_LIFETIME_SECONDS:
            await self._refresh()
        key = self._find(kid)
        if key is None and time.monotonic() - self._fetched_at >= self.MIN_REFETCH_SECONDS:
            await self._refresh()  # perhaps the issuer rotated its keys
            key = self._find(kid)
        if key is None:
            raise errors.Unauthenticated("The token was signed with an unknown key.")
        return key

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        for key in self._keys:
            if kid is None or key.key_id == kid:
                return key
        return None

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now < self._failed_until:
            raise self._unavailable(self._failed_until - now)
        task = self._fetch
        # A task from another event loop (tests, a restarted host) cannot be awaited here.
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.create_task(self._load())
            task.add_done_callback(_retrieve_exception)
            self._fetch = task
        try:
            # shield: a waiter that gives up must not cancel the fetch the others share.
            await asyncio.wait_for(asyncio.shield(task), self.WAIT_SECONDS)
        except TimeoutError:
            raise self._unavailable(self.RETRY_AFTER_SECONDS) from None
        except errors.DependencyUnavailable:
            # A fresh exception per waiter: the task's one is shared by all of them.
            raise self._unavailable(self._failed_until - time.monotonic()) from None

    async def _load(self) -> list[jwt.PyJWK]:
        try:
            keys = await asyncio.to_thread(self._fetch_keys)
        except _UnusableJwks as problem:
            self._failed_until = time.monotonic() + self.RETRY_AFTER_SECONDS
            log.warning("sign-in provider keys unavailable: %s", problem)
            raise self._unavailable(self.RETRY_AFTER_SECONDS) from None
        self._keys, self._fetched_at = keys, time.monotonic()
        return keys

    def _unavailable(self, seconds: float) -> errors.DependencyUnavailable:
        return errors.DependencyUnavailable(
            "the sign-in provider's keys", retry_after=max(1, math.ceil(seconds))
        )

    def _fetch_keys(self) -> list[jwt.PyJWK]:  # blocking: run in a thread
        if self._jwks_url is None:
            discovery = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = self._get_json(discovery)
            jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
            if not isinstance(jwks_uri, str):
                raise _UnusableJwks(f"the discovery document at {discovery} has no jwks_uri")
            try:
                self._jwks_url = _checked_url(jwks_uri)
            except errors.ConfigurationError:
                raise _UnusableJwks(
                    f"the discovery document at {discovery} names a jwks_uri that is not https"
                ) from None
        url = self._jwks_url
        document = self._get_json(url)
        if not isinstance(document, dict):
            raise _UnusableJwks(f"the JWKS at {url} is not a JSON object")
        try:
            key_set = jwt.PyJWKSet.from_dict(document)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise _UnusableJwks(f"the JWKS at {url} has no usable key ({error})") from None
        keys = [key for key in key_set.keys if key.public_key_use in (None, "sig")]
        if not keys:
            raise _UnusableJwks(f"the JWKS at {url} has no signing key")
        return keys

    def _get_json(self, url: str) -> Any:
        checked = _checked_url(url)
        try:
            with urllib.request.urlopen(checked, timeout=self._timeout) as resp:  # noqa: S310 (scheme checked)
                body = resp.read(self.MAX_DOCUMENT_BYTES + 1)
        except (OSError, http.client.HTTPException, ValueError) as error:
            # URLError, HTTPError (4xx/5xx), timeouts, refused or cut connections, bad URLs
            raise _UnusableJwks(f"fetching {url} failed ({_reason(error)})") from None
        if len(body) > self.MAX_DOCUMENT_BYTES:
            raise _UnusableJwks(f"the answer from {url} is over {self.MAX_DOCUMENT_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise _UnusableJwks(f"the answer from {url} is not JSON") from None


class _UnusableJwks(Exception):
    """A JWKS (or discovery) fetch failed or gave no usable keys; the message says which."""


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return type(error).__name__


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    """Marks a fetch's failure as seen: every waiter may have given up before it ended."""
    if not task.cancelled():
        task.exception()


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
        if len(encoded) > MAX_PRINCIPAL_HEADER_CHARS:
            raise errors.Unauthenticated("The client principal header is too large.")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
            if _too_deep(decoded, MAX_PRINCIPAL_JSON_DEPTH):
                raise errors.Unauthenticated("The client principal header is nested too deeply.")
            principal = json.loads(decoded)
            claims = {c["typ"]: c["val"] for c in principal.get("claims", [])}
        except (ValueError, binascii.Error, TypeError, KeyError, AttributeError):
            raise errors.Unauthenticated("The client principal header is malformed.") from None
        # The platform's principal id is the user's object id; a configured claim wins over it.
        user_id = claims.get(self._user_claim) if self._user_claim != "sub" else None
        user_id = user_id or _header(headers, "x-ms-client-principal-id") or claims.get("sub")
        name = claims.get("name") or _header(headers, "x-ms-client-principal-name")
        return _caller(user_id, name)


def _too_deep(text: str, limit: int) -> bool:
    """Whether JSON `text` nests arrays/objects more than `limit` deep (checked before parsing)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


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
    if not ids.is_valid_id(user_id):
        raise errors.Unauthenticated("The token's subject is missing or not usable as a user id.")
    display = name.strip()[:64] if isinstance(name, str) and name.strip() else None
    return Caller(user_id=user_id, name=display)
