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
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

import jwt

from switchboard import errors, ids
from switchboard.logs import safe
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


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key of an issuer and the algorithms a token signed with it may name.

    A JWK that states its `alg` allows that one; one that does not allows every algorithm of
    its key type (RSA: RS256/384/512 and PS256/384/512; EC: the one its curve fixes; OKP:
    EdDSA) — RFC 7517 makes `alg` optional, and Entra's and many issuers' keys omit it.
    """

    key: Any
    key_id: str | None
    algorithms: frozenset[str]


_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVE_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


def verification_key(jwk: Mapping[str, Any]) -> VerificationKey | None:
    """The key a JWK describes, or None when it is not a usable signature key."""
    kty, declared = jwk.get("kty"), jwk.get("alg")
    if jwk.get("use") not in (None, "sig"):
        return None
    if kty == "RSA":
        allowed = _RSA_ALGORITHMS
    elif kty == "EC" and jwk.get("crv") in _EC_CURVE_ALGORITHMS:
        allowed = frozenset({_EC_CURVE_ALGORITHMS[jwk["crv"]]})
    elif kty == "OKP" and jwk.get("crv") in ("Ed25519", "Ed448"):
        allowed = frozenset({"EdDSA"})
    else:
        return None  # symmetric (oct) keys above all: never a verification key here
    if declared is not None:
        if declared not in allowed:
            return None
        allowed = frozenset({declared})
    try:
        parsed = jwt.PyJWK(dict(jwk), algorithm=min(allowed))
    except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError):
        return None
    kid = jwk.get("kid")
    return VerificationKey(parsed.key, kid if isinstance(kid, str) else None, allowed)


def verification_keys(jwks: Mapping[str, Any]) -> list[VerificationKey]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return []
    found = [verification_key(k) for k in keys if isinstance(k, dict)]
    return [k for k in found if k is not None]


class KeySource(Protocol):
    """Where a token's verification key comes from, by its `kid`."""

    async def signing_key(self, kid: str | None) -> VerificationKey: ...


class StaticKeySource:
    """Keys from a JWKS held in memory (dev mode's own keys; tests)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = verification_keys(jwks)

    async def signing_key(self, kid: str | None) -> VerificationKey:
        for key in self._keys:
            if kid is None or key.key_id == kid:
                return key
        raise errors.Unauthenticated("The token was signed with an unknown key.")


class RemoteJwksKeySource:
    """Keys from an issuer's JWKS URL (or its discovery document), fetched lazily and cached.

    Anyone can make a request reach this class (the key lookup comes before any signature is
    checked), so a slow, failing or nonsensical issuer must not be amplified:
    - one fetch at a time: the first request that needs keys starts it as a task, and every
      request that needs keys meanwhile awaits that same task;
    - a request waits at most `WAIT_SECONDS` for it (the fetch itself goes on, bounded in all by
      `FETCH_SECONDS`), then gets 503;
    - after a failed fetch, requests that need a fetch fail fast with 503 for
      `RETRY_AFTER_SECONDS` (no fetch);
    - an answer that is not a usable key set (HTML, no keys, malformed keys) is such a failure,
      logged once per fetch naming the problem, never a 500;
    - a kid not in a key set fetched less than `MIN_REFETCH_SECONDS` ago is refused (401)
      without a fetch, so made-up kids cannot drive fetches;
    - https all the way: a redirect to anything but https is refused, as is an http `jwks_uri`.

    The cache, stated (docs/production-sign-in.md): keys are fetched again after
    `KEY_LIFETIME_SECONDS` (a key the issuer withdrew keeps working up to that long); a token
    with a new kid makes a fetch at once unless one was made in the last `MIN_REFETCH_SECONDS`
    (a freshly rotated key may be refused that long). When the hour is up, requests go on with
    the cached keys while one background fetch renews them; if the issuer is down, the cached
    keys serve through the outage, up to `MAX_STALE_SECONDS`.

    `check()` is the start-up check: it fetches discovery and keys once, and refuses to start
    (ConfigurationError, saying what is wrong) on a misconfiguration — a 4xx, an untrusted
    certificate, no or an http `jwks_uri`, a discovery `issuer` that is not AUTH_ISSUER — while
    an issuer that is merely unreachable is logged and left to the 503s of a real outage.
    """

    KEY_LIFETIME_SECONDS = 3600.0
    MIN_REFETCH_SECONDS = 60.0
    MAX_STALE_SECONDS = 24 * 3600.0
    RETRY_AFTER_SECONDS = 10.0
    WAIT_SECONDS = 3.0
    FETCH_SECONDS = 10.0
    MAX_DOCUMENT_BYTES = 1 << 20

    def __init__(
        self,
        issuer: str,
        jwks_url: str | None = None,
        *,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context`: whom to trust (tests); by default the system's trust store, or the
        bundle named by SSL_CERT_FILE (a private CA)."""
        self._issuer = issuer
        self._jwks_url = jwks_url or None
        self._discovered = jwks_url is None
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._keys: list[VerificationKey] = []
        self._fetched_at = -float("inf")
        self._failed_until = -float("inf")
        self._fetch: asyncio.Task[list[VerificationKey]] | None = None

    async def signing_key(self, kid: str | None) -> VerificationKey:
        age = time.monotonic() - self._fetched_at
        if age >= self.KEY_LIFETIME_SECONDS:
            if self._keys and age < self.MAX_STALE_SECONDS and self._find(kid) is not None:
                # Renew without making anyone wait; through an outage the cached keys serve.
                self._renew_in_background()
            else:
                await self._refresh()
        key = self._find(kid)
        if key is None and time.monotonic() - self._fetched_at >= self.MIN_REFETCH_SECONDS:
            await self._refresh()  # perhaps the issuer rotated its keys
            key = self._find(kid)
        if key is None:
            raise errors.Unauthenticated("The token was signed with an unknown key.")
        return key

    def check(self) -> None:
        """The start-up check (blocking): see the class docstring."""
        try:
            keys = self._fetch_keys()
        except _Misconfigured as problem:
            raise errors.ConfigurationError(f"bad setting: {problem}") from None
        except _UnusableJwks as problem:
            log.warning(
                "sign-in provider not reachable at start-up (%s); answering 503 until it is",
                problem,
            )
            return
        self._keys, self._fetched_at = keys, time.monotonic()
        log.info("sign-in provider checked: %d signing key(s) from %s", len(keys), self._jwks_url)

    def _find(self, kid: str | None) -> VerificationKey | None:
        for key in self._keys:
            if kid is None or key.key_id == kid:
                return key
        return None

    def _task(self) -> asyncio.Task[list[VerificationKey]]:
        task = self._fetch
        # A task from another event loop (tests, a restarted host) cannot be awaited here.
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.create_task(self._load())
            task.add_done_callback(_retrieve_exception)
            self._fetch = task
        return task

    def _renew_in_background(self) -> None:
        if time.monotonic() >= self._failed_until:
            self._task()

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now < self._failed_until:
            raise self._unavailable(self._failed_until - now)
        task = self._task()
        try:
            # shield: a waiter that gives up must not cancel the fetch the others share.
            await asyncio.wait_for(asyncio.shield(task), self.WAIT_SECONDS)
        except TimeoutError:
            raise self._unavailable(self.RETRY_AFTER_SECONDS) from None
        except errors.DependencyUnavailable:
            # A fresh exception per waiter: the task's one is shared by all of them.
            raise self._unavailable(self._failed_until - time.monotonic()) from None

    async def _load(self) -> list[VerificationKey]:
        try:
            keys = await asyncio.to_thread(self._fetch_keys)
        except _UnusableJwks as problem:
            self._failed_until = time.monotonic() + self.RETRY_AFTER_SECONDS
            stale = f"; serving the {len(self._keys)} cached key(s)" if self._keys else ""
            log.warning("sign-in provider keys unavailable: %s%s", problem, stale)
            raise self._unavailable(self.RETRY_AFTER_SECONDS) from None
        self._keys, self._fetched_at = keys, time.monotonic()
        return keys

    def _unavailable(self, seconds: float) -> errors.DependencyUnavailable:
        return errors.DependencyUnavailable(
            "the sign-in provider's keys", retry_after=max(1, math.ceil(seconds))
        )

    def _fetch_keys(self) -> list[VerificationKey]:  # blocking: run in a thread
        deadline = time.monotonic() + self.FETCH_SECONDS
        if self._discovered:
            discovery = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = self._get_json(discovery, deadline)
            if not isinstance(document, dict):
                raise _Misconfigured(
                    f"AUTH_ISSUER: the discovery document at {discovery} is not a JSON object"
                )
            # OIDC Discovery 1.0 §4.3: the document's issuer is exactly the issuer it was
            # fetched for; tokens carry that same string in `iss`.
            found = document.get("issuer")
            if found != self._issuer:
                raise _Misconfigured(
                    f"AUTH_ISSUER is '{safe(self._issuer)}' but the issuer's discovery document "
                    f"says '{safe(found)}'; they must be equal, character for character "
                    "(a trailing '/' included), as tokens carry the latter in iss"
                )
            jwks_uri = document.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise _Misconfigured(
                    f"AUTH_ISSUER: the discovery document at {discovery} has no jwks_uri "
                    "(set AUTH_JWKS_URL)"
                )
            if urlparse(jwks_uri).scheme != "https" and not _is_local_http(jwks_uri):
                raise _Misconfigured(
                    f"AUTH_ISSUER: the discovery document at {discovery} names a jwks_uri "
                    "that is not https"
                )
            self._jwks_url = jwks_uri
        url = self._jwks_url
        assert url is not None
        document = self._get_json(url, deadline)
        if not isinstance(document, dict):
            raise _Misconfigured(f"AUTH_JWKS_URL: the JWKS at {url} is not a JSON object")
        keys = verification_keys(document)
        if not keys:
            raise _Misconfigured(
                f"AUTH_JWKS_URL: the JWKS at {url} has no usable key "
                "(an RSA, EC or OKP signature key)"
            )
        return keys

    def _opener(self) -> urllib.request.OpenerDirector:
        context = self._ssl_context or ssl.create_default_context()
        return urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _HttpsOnlyRedirects()
        )

    def _get_json(self, url: str, deadline: float) -> Any:
        checked = _checked_url(url)
        body = b""
        try:
            with self._opener().open(checked, timeout=self._timeout) as resp:
                # The socket timeout bounds each read; the deadline bounds them all (a server
                # that drips a byte at a time).
                while len(body) <= self.MAX_DOCUMENT_BYTES:
                    if time.monotonic() > deadline:
                        raise _UnusableJwks(f"fetching {url} took over {self.FETCH_SECONDS:.0f} s")
                    chunk = resp.read(64 * 1024)
                    if not chunk:
                        break
                    body += chunk
        except urllib.error.HTTPError as error:
            problem = f"fetching {url} failed (HTTP {error.code})"
            if 400 <= error.code < 500 and error.code not in (408, 429):
                raise _Misconfigured(f"AUTH_ISSUER/AUTH_JWKS_URL: {problem}") from None
            raise _UnusableJwks(problem) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, ssl.SSLCertVerificationError):
                raise _Misconfigured(
                    f"AUTH_ISSUER/AUTH_JWKS_URL: {url} has a certificate this server does not "
                    f"trust ({error.reason.verify_message}); for a private CA set SSL_CERT_FILE "
                    "to a bundle that holds it"
                ) from None
            raise _UnusableJwks(f"fetching {url} failed ({_reason(error)})") from None
        except (OSError, http.client.HTTPException, ValueError) as error:
            # timeouts, refused or cut connections, bad URLs
            raise _UnusableJwks(f"fetching {url} failed ({_reason(error)})") from None
        if len(body) > self.MAX_DOCUMENT_BYTES:
            raise _Misconfigured(f"the answer from {url} is over {self.MAX_DOCUMENT_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise _Misconfigured(f"the answer from {url} is not JSON") from None


class _UnusableJwks(Exception):
    """A JWKS (or discovery) fetch failed or gave no usable keys; the message says which."""


class _Misconfigured(_UnusableJwks):
    """A failure no retry will mend (4xx, untrusted certificate, wrong document): at start-up it
    stops the app; later, like any failure, it is a logged 503."""


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to https: keys fetched over plain http could be anyone's."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlparse(newurl).scheme != "https":
            raise _Misconfigured(
                f"AUTH_ISSUER/AUTH_JWKS_URL: {req.full_url} redirects to a URL that is not "
                "https; refused"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


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


def _is_local_http(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme == "http" and parsed.hostname in {"localhost", "127.0.0.1", "::1"}


class TokenVerifier:
    """Checks a bearer token (signature, issuer, audience, expiry, scope) and names its caller.

    Every refusal is a 401 and one INFO log line saying why (claim values escaped and cut,
    never the token), so a deployment that refuses everyone (an AUTH_ISSUER one `/` off the
    tokens' `iss`) says so in its log.
    """

    def __init__(
        self,
        keys: KeySource,
        issuer: str,
        audience: str,
        user_claim: str = "sub",
        required_scopes: Collection[str] = (),
    ):
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._user_claim = user_claim
        self._required_scopes = frozenset(required_scopes)

    async def verify(self, token: str) -> Caller:
        header = _unverified_header(token)
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise _refused("The token's signing algorithm is not accepted.", f"alg {safe(alg, 20)}")
        kid = header.get("kid")
        key = await self._keys.signing_key(kid if isinstance(kid, str) else None)
        if alg not in key.algorithms:
            raise _refused(
                "The token's algorithm does not match its key.",
                f"alg {alg} is not one of its key's ({', '.join(sorted(key.algorithms))})",
            )
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
            raise _refused("The token has expired.", "expired") from None
        except jwt.InvalidAudienceError:
            raise _refused(
                "The token is for another audience.",
                f"aud {safe(_unverified_claim(token, 'aud'), 80)} is not AUTH_AUDIENCE "
                f"{safe(self._audience, 80)}",
            ) from None
        except jwt.InvalidIssuerError:
            raise _refused(
                "The token is from another issuer.",
                f"iss {safe(_unverified_claim(token, 'iss'), 120)!s} is not AUTH_ISSUER "
                f"{safe(self._issuer, 120)} (they must be equal, a trailing '/' included)",
            ) from None
        except jwt.PyJWTError as error:
            raise _refused("The token is not valid.", type(error).__name__) from None
        self._check_delegated(claims)
        return _caller(claims.get(self._user_claim), claims.get("name"), self._user_claim)

    def check(self) -> None:
        """The start-up check of a remote issuer (RemoteJwksKeySource.check); else nothing."""
        if isinstance(self._keys, RemoteJwksKeySource):
            self._keys.check()

    def _check_delegated(self, claims: Mapping[str, Any]) -> None:
        """A user's token, not an app's: Microsoft's rule for protected web APIs (check `scp`).

        Any app in an Entra tenant can get an app-only token for the API (no `scp`, `idtyp`
        `app` when that optional claim is on); such a token names no person and is refused.
        With AUTH_REQUIRED_SCOPE, the token must carry one of those scopes (`scp`, or OAuth's
        `scope` for other issuers).
        """
        scopes = token_scopes(claims)
        if claims.get("idtyp") == "app" or ("tid" in claims and not scopes):
            raise _refused(
                "The token is an application's, not a signed-in user's.",
                "app-only token (no scp)",
            )
        if self._required_scopes and not scopes & self._required_scopes:
            raise _refused(
                "The token does not carry the scope this API requires.",
                f"scopes {safe(' '.join(sorted(scopes)), 120)!s} lack AUTH_REQUIRED_SCOPE",
            )


def token_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """The delegated scopes a token carries: `scp` (Entra, B2C) or `scope` (RFC 8693, Auth0,
    Keycloak), space-separated (or a list)."""
    found: set[str] = set()
    for name in ("scp", "scope"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return frozenset(found)


def _refused(detail: str, reason: str) -> errors.Unauthenticated:
    log.info("token refused: %s", reason)
    return errors.Unauthenticated(detail)


def _unverified_claim(token: str, name: str) -> Any:
    """One claim of a token already found to be a JWT, for a log line only."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError, binascii.Error, RecursionError):
        return None
    return claims.get(name) if isinstance(claims, dict) else None


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

    def check(self) -> None:
        """At start-up: the issuer's discovery and keys (jwt mode); see RemoteJwksKeySource."""
        self._verifier.check()


# App Service hands some claims to the app under their long (WS-Federation) names; the short
# name the token had is what AUTH_USER_CLAIM means in both modes.
EASYAUTH_CLAIM_ALIASES = {
    "sub": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "oid": "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "tid": "http://schemas.microsoft.com/identity/claims/tenantid",
    "scp": "http://schemas.microsoft.com/identity/claims/scope",
    "name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
}


class EasyAuthAuthenticator:
    """The caller from App Service authentication's `X-MS-CLIENT-PRINCIPAL*` headers.

    The user id is the claim AUTH_USER_CLAIM names, under its own name or App Service's long
    name for it — the same claim jwt mode reads, so switching modes keeps every user. Never the
    `X-MS-CLIENT-PRINCIPAL-ID` header: that is the object id whatever the setting says, and
    falling back to it would quietly turn some users into new ones.
    """

    def __init__(self, user_claim: str = "sub", required_scopes: Collection[str] = ()) -> None:
        self._user_claim = user_claim
        self._required_scopes = frozenset(required_scopes)

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
            claims: dict[str, Any] = {}
            for claim in principal.get("claims", []):
                claims.setdefault(claim["typ"], claim["val"])
        except (ValueError, binascii.Error, TypeError, KeyError, AttributeError):
            raise errors.Unauthenticated("The client principal header is malformed.") from None
        short = {
            name: claims.get(name, claims.get(long))
            for name, long in EASYAUTH_CLAIM_ALIASES.items()
            if name in claims or long in claims
        }
        user_id = claims.get(self._user_claim, short.get(self._user_claim))
        if self._required_scopes and not token_scopes(short) & self._required_scopes:
            raise _refused(
                "The token does not carry the scope this API requires.",
                "easyauth principal lacks AUTH_REQUIRED_SCOPE",
            )
        name = short.get("name") or _header(headers, "x-ms-client-principal-name")
        return _caller(user_id, name, self._user_claim)


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


def _caller(user_id: Any, name: Any, claim: str = "sub") -> Caller:
    if not ids.is_valid_id(user_id):
        raise _refused(
            "The token's subject is missing or not usable as a user id.",
            f"its {safe(claim, 80)} claim (AUTH_USER_CLAIM) is missing or not a valid id",
        )
    display = name.strip()[:64] if isinstance(name, str) and name.strip() else None
    return Caller(user_id=user_id, name=display)
