"""Caller authentication: dev/jwt bearer tokens through one TokenVerifier, a remote JWKS with
discovery served from a local HTTP server, Easy Auth principal headers, and the attacks each
mode must refuse."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from switchboard import errors
from switchboard.auth import (
    BearerAuthenticator,
    EasyAuthAuthenticator,
    RemoteJwksKeySource,
    StaticKeySource,
    TokenVerifier,
)
from switchboard.dev.issuer import DevTokenIssuer
from tests.conftest import seed_keys

ISSUER = "https://login.example.test/tenant/v2.0"
AUDIENCE = "api://switchboard"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa_key()


def jwks_for(key: rsa.RSAPrivateKey, kid: str = "k1") -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": kid, "alg": "RS256", "use": "sig"}]}


def make_token(key: Any, *, alg: str = "RS256", kid: str = "k1", **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "name": "Alice",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def bearer(signing_key: rsa.RSAPrivateKey) -> BearerAuthenticator:
    return BearerAuthenticator(
        TokenVerifier(StaticKeySource(jwks_for(signing_key)), ISSUER, AUDIENCE)
    )


async def test_valid_token_names_the_caller(signing_key: rsa.RSAPrivateKey) -> None:
    caller = await bearer(signing_key).authenticate(
        {"authorization": f"Bearer {make_token(signing_key)}"}
    )
    assert caller.user_id == "alice"
    assert caller.name == "Alice"


def _unsigned(**claims: Any) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _hs256_with_public_key(signing_key: rsa.RSAPrivateKey, **claims: Any) -> str:
    """The key-confusion attack: HMAC-signed with the (public) RSA key as the secret.

    Built by hand, since PyJWT itself refuses to make such a token."""
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": "k1"})
    body = _b64(claims)
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _attacks(signing_key: rsa.RSAPrivateKey) -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": make_token(signing_key, iat=now - 7200, exp=now - 3600),
        "unsigned": _unsigned(iss=ISSUER, aud=AUDIENCE, sub="alice", exp=now + 600),
        "hs256 with the public key as secret": _hs256_with_public_key(
            signing_key, iss=ISSUER, aud=AUDIENCE, sub="alice", exp=now + 600
        ),
        "another key": make_token(rsa_key()),
        "wrong issuer": make_token(signing_key, iss="https://evil.example.test"),
        "wrong audience": make_token(signing_key, aud="api://other"),
        "no expiry": make_token(signing_key, exp=None),
        "no subject": make_token(signing_key, sub=None),
        "subject with a slash": make_token(signing_key, sub="../bob"),
        "subject with a trailing newline": make_token(signing_key, sub="carol\n"),
        "subject dot": make_token(signing_key, sub="."),
        "subject dot dot": make_token(signing_key, sub=".."),
        "subject with a control character": make_token(signing_key, sub="a\u0001b"),
        "subject with a C1 control character": make_token(signing_key, sub="a\x85b"),
        "subject with trailing whitespace": make_token(signing_key, sub="carol "),
        "unknown kid": make_token(signing_key, kid="nope"),
        "tampered payload": _tamper(make_token(signing_key)),
    }


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "bob"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "attack",
    [
        "expired",
        "unsigned",
        "hs256 with the public key as secret",
        "another key",
        "wrong issuer",
        "wrong audience",
        "no expiry",
        "no subject",
        "subject with a slash",
        "subject with a trailing newline",
        "subject dot",
        "subject dot dot",
        "subject with a control character",
        "subject with a C1 control character",
        "subject with trailing whitespace",
        "unknown kid",
        "tampered payload",
    ],
)
async def test_bad_tokens_are_refused(signing_key: rsa.RSAPrivateKey, attack: str) -> None:
    token = _attacks(signing_key)[attack]
    with pytest.raises(errors.Unauthenticated) as caught:
        await bearer(signing_key).authenticate({"authorization": f"Bearer {token}"})
    assert token not in caught.value.detail


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer   ", "Token abc", "Basic YTpi"])
async def test_missing_or_other_schemes_are_refused(
    signing_key: rsa.RSAPrivateKey, header: str
) -> None:
    with pytest.raises(errors.Unauthenticated):
        await bearer(signing_key).authenticate({"authorization": header} if header else {})


async def test_user_claim_is_configurable(signing_key: rsa.RSAPrivateKey) -> None:
    verifier = TokenVerifier(StaticKeySource(jwks_for(signing_key)), ISSUER, AUDIENCE, "oid")
    caller = await verifier.verify(make_token(signing_key, oid="0000-1111"))
    assert caller.user_id == "0000-1111"
    with pytest.raises(errors.Unauthenticated):
        await verifier.verify(make_token(signing_key))  # no oid claim


async def test_es256_keys_work_too() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    verifier = TokenVerifier(
        StaticKeySource({"keys": [{**public, "kid": "e1", "alg": "ES256"}]}), ISSUER, AUDIENCE
    )
    caller = await verifier.verify(make_token(key, alg="ES256", kid="e1"))
    assert caller.user_id == "alice"


# --- jwt mode against a JWKS over HTTP, found by OIDC discovery -----------------------------


class _Issuer(BaseHTTPRequestHandler):
    documents: ClassVar[dict[str, Any]] = {}  # bytes are sent as they are, anything else as JSON
    hits: ClassVar[list[str]] = []
    status: ClassVar[int] = 200
    hang: ClassVar[threading.Event | None] = None  # set: answers only once the event is set

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.hang is not None:
            self.hang.wait(10)
        body = self.documents.get(self.path)
        if body is None or self.status != 200:
            self.send_response(404 if body is None else self.status)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def oidc_server(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Issuer)
    base = f"http://127.0.0.1:{server.server_port}"
    _Issuer.documents = {
        "/tenant/v2.0/.well-known/openid-configuration": {
            "issuer": f"{base}/tenant/v2.0",
            "jwks_uri": f"{base}/keys",
        },
        "/keys": jwks_for(signing_key),
    }
    _Issuer.hits = []
    _Issuer.status = 200
    _Issuer.hang = None
    # A short poll: shutdown() waits up to one poll interval (0.5 s by default) per test.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield base
    if _Issuer.hang is not None:
        _Issuer.hang.set()
    server.shutdown()
    server.server_close()


async def test_remote_jwks_by_discovery_and_cached(
    oidc_server: str, signing_key: rsa.RSAPrivateKey
) -> None:
    issuer = f"{oidc_server}/tenant/v2.0"
    verifier = TokenVerifier(RemoteJwksKeySource(issuer), issuer, AUDIENCE)
    for _ in range(5):
        caller = await verifier.verify(make_token(signing_key, iss=issuer))
        assert caller.user_id == "alice"
    assert _Issuer.hits.count("/keys") == 1  # keys cached after the first fetch
    assert _Issuer.hits.count("/tenant/v2.0/.well-known/openid-configuration") == 1


async def test_remote_jwks_explicit_url(oidc_server: str, signing_key: rsa.RSAPrivateKey) -> None:
    verifier = TokenVerifier(RemoteJwksKeySource(ISSUER, f"{oidc_server}/keys"), ISSUER, AUDIENCE)
    assert (await verifier.verify(make_token(signing_key))).user_id == "alice"
    with pytest.raises(errors.Unauthenticated):
        await verifier.verify(make_token(rsa_key(), kid="other"))


async def test_unreachable_jwks_is_a_dependency_failure(signing_key: rsa.RSAPrivateKey) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Issuer)
    port = server.server_port
    server.server_close()  # nothing listens there now
    verifier = TokenVerifier(
        RemoteJwksKeySource(ISSUER, f"http://127.0.0.1:{port}/keys", timeout=1), ISSUER, AUDIENCE
    )
    with pytest.raises(errors.DependencyUnavailable):
        await verifier.verify(make_token(signing_key))


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b"<html><body>Sign in</body></html>", "not JSON"),
        ({"keys": []}, "no usable key"),
        ({"keys": [{"kty": "RSA", "kid": "k1", "n": "%%%", "e": "AQAB"}]}, "no usable key"),
        ({"keys": [{"kty": "RSA", "kid": "k1"}]}, "no usable key"),
        ({"keys": "nope"}, "no usable key"),
        ([1, 2], "not a JSON object"),
    ],
)
async def test_an_unusable_key_set_is_a_logged_503(
    oidc_server: str,
    signing_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
    answer: Any,
    problem: str,
) -> None:
    _Issuer.documents["/keys"] = answer
    verifier = TokenVerifier(RemoteJwksKeySource(ISSUER, f"{oidc_server}/keys"), ISSUER, AUDIENCE)
    with caplog.at_level(logging.WARNING, logger="switchboard.auth"):
        for _ in range(3):
            with pytest.raises(errors.DependencyUnavailable) as caught:
                await verifier.verify(make_token(signing_key))
            assert caught.value.retry_after >= 1
    lines = [r.getMessage() for r in caplog.records if r.name == "switchboard.auth"]
    assert len(lines) == 1  # one fetch, one line; the next requests fail fast
    assert problem in lines[0]
    assert f"{oidc_server}/keys" in lines[0]
    assert _Issuer.hits.count("/keys") == 1


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b"<html>maintenance</html>", "not JSON"),
        ({}, "has no jwks_uri"),
        ({"jwks_uri": "http://keys.example.test/keys"}, "not https"),
        # OIDC Discovery §4.3: the document's issuer is exactly AUTH_ISSUER (issue 21 A5).
        ({"issuer": "x", "jwks_uri": "https://keys.example.test/keys"}, "must be equal"),
    ],
)
async def test_an_unusable_discovery_document_is_a_logged_503(
    oidc_server: str,
    signing_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
    answer: Any,
    problem: str,
) -> None:
    issuer = f"{oidc_server}/tenant/v2.0"
    if isinstance(answer, dict):
        answer = {"issuer": issuer, **answer}
    _Issuer.documents["/tenant/v2.0/.well-known/openid-configuration"] = answer
    verifier = TokenVerifier(RemoteJwksKeySource(issuer), issuer, AUDIENCE)
    with (
        caplog.at_level(logging.WARNING, logger="switchboard.auth"),
        pytest.raises(errors.DependencyUnavailable),
    ):
        await verifier.verify(make_token(signing_key, iss=issuer))
    lines = [r.getMessage() for r in caplog.records if r.name == "switchboard.auth"]
    assert len(lines) == 1
    assert problem in lines[0]


async def test_failing_issuer_is_fetched_once_for_many_requests(
    oidc_server: str, signing_key: rsa.RSAPrivateKey
) -> None:
    _Issuer.status = 500
    verifier = TokenVerifier(RemoteJwksKeySource(ISSUER, f"{oidc_server}/keys"), ISSUER, AUDIENCE)
    token = make_token(signing_key)
    results = await asyncio.gather(
        *(verifier.verify(token) for _ in range(100)), return_exceptions=True
    )
    assert all(isinstance(r, errors.DependencyUnavailable) for r in results)
    assert 1 <= _Issuer.hits.count("/keys") <= 2
    # During the negative cache no request fetches, even once the issuer is back...
    _Issuer.status = 200
    with pytest.raises(errors.DependencyUnavailable) as caught:
        await verifier.verify(token)
    assert 1 <= caught.value.retry_after <= RemoteJwksKeySource.RETRY_AFTER_SECONDS
    assert _Issuer.hits.count("/keys") <= 2


async def test_negative_cache_ends_and_keys_are_fetched_again(
    oidc_server: str, signing_key: rsa.RSAPrivateKey
) -> None:
    _Issuer.status = 500
    source = RemoteJwksKeySource(ISSUER, f"{oidc_server}/keys")
    source.RETRY_AFTER_SECONDS = 0.2
    verifier = TokenVerifier(source, ISSUER, AUDIENCE)
    with pytest.raises(errors.DependencyUnavailable):
        await verifier.verify(make_token(signing_key))
    _Issuer.status = 200
    await asyncio.sleep(0.3)
    assert (await verifier.verify(make_token(signing_key))).user_id == "alice"
    assert _Issuer.hits.count("/keys") == 2


async def test_hanging_issuer_answers_every_request_503_within_the_bound(
    oidc_server: str, signing_key: rsa.RSAPrivateKey
) -> None:
    _Issuer.hang = threading.Event()
    source = RemoteJwksKeySource(ISSUER, f"{oidc_server}/keys", timeout=1)
    source.WAIT_SECONDS = 0.5
    verifier = TokenVerifier(source, ISSUER, AUDIENCE)
    token = make_token(signing_key)
    started = time.monotonic()
    results = await asyncio.gather(
        *(verifier.verify(token) for _ in range(12)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert all(isinstance(r, errors.DependencyUnavailable) for r in results), results
    assert elapsed < 0.9  # each waited at most WAIT_SECONDS, side by side, not in a queue
    assert _Issuer.hits.count("/keys") == 1
    _Issuer.hang.set()


async def test_made_up_kids_do_not_drive_fetches(
    oidc_server: str, signing_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(RemoteJwksKeySource(ISSUER, f"{oidc_server}/keys"), ISSUER, AUDIENCE)
    assert (await verifier.verify(make_token(signing_key))).user_id == "alice"
    for n in range(20):
        with pytest.raises(errors.Unauthenticated):
            await verifier.verify(make_token(signing_key, kid=f"made-up-{n}"))
    assert _Issuer.hits.count("/keys") == 1


async def test_jwks_must_be_https_off_localhost() -> None:
    source = RemoteJwksKeySource(ISSUER, "http://keys.example.test/keys")
    with pytest.raises(errors.ConfigurationError):
        await source.signing_key("k1")


# --- dev mode ---------------------------------------------------------------------------------


async def test_dev_tokens_verify_through_the_jwt_path_and_keys_persist(tmp_path: Path) -> None:
    seed_keys(tmp_path)
    issuer = DevTokenIssuer(tmp_path)
    token, lifetime = issuer.issue("alice", "Alice")
    assert lifetime == 3600
    verifier = TokenVerifier(issuer.key_source(), issuer.issuer, issuer.audience)
    assert (await verifier.verify(token)).user_id == "alice"
    # A restarted server (same data dir) accepts tokens it issued before.
    again = DevTokenIssuer(tmp_path)
    assert again.key_id == issuer.key_id
    assert await TokenVerifier(again.key_source(), again.issuer, again.audience).verify(token)


def test_dev_key_is_private_to_the_user(tmp_path: Path) -> None:
    DevTokenIssuer(tmp_path / "fresh")
    mode = (tmp_path / "fresh" / DevTokenIssuer.KEY_FILE).stat().st_mode & 0o777
    assert mode == 0o600


# --- easyauth ---------------------------------------------------------------------------------


def principal(claims: list[dict[str, str]]) -> str:
    data = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(data).encode()).decode()


# What App Service puts in X-MS-CLIENT-PRINCIPAL for an Entra user: several claims under their
# long WS-Federation names (Microsoft Learn, "Work with user identities in Azure App Service
# authentication", the X-MS-CLIENT-PRINCIPAL claims list).
NAMEID = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"
OBJECTID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
SCOPE = "http://schemas.microsoft.com/identity/claims/scope"
ENTRA_PRINCIPAL = [
    {"typ": NAMEID, "val": "sub-alice"},
    {"typ": OBJECTID, "val": "oid-alice"},
    {"typ": SCOPE, "val": "access_as_user"},
    {"typ": "name", "val": "Alice"},
]


@pytest.mark.parametrize(("claim", "user_id"), [("sub", "sub-alice"), ("oid", "oid-alice")])
async def test_easyauth_user_claim_means_what_it_means_in_jwt_mode(
    claim: str, user_id: str
) -> None:
    # Issue 21 A2: AUTH_USER_CLAIM=oid was ignored in easyauth (App Service renames oid), and sub
    # silently meant the object id there; now each names the same claim in both modes.
    caller = await EasyAuthAuthenticator(claim).authenticate(
        {
            "x-ms-client-principal": principal(ENTRA_PRINCIPAL),
            "x-ms-client-principal-id": "header-id",
            "x-ms-client-principal-name": "alice@example.test",
        }
    )
    assert caller.user_id == user_id
    assert caller.name == "Alice"


async def test_easyauth_never_falls_back_to_the_principal_id_header(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.auth")
    with pytest.raises(errors.Unauthenticated):
        await EasyAuthAuthenticator("sub").authenticate(
            {
                "x-ms-client-principal": principal([{"typ": "name", "val": "Alice"}]),
                "x-ms-client-principal-id": "oid-alice",
            }
        )
    assert "its sub claim (AUTH_USER_CLAIM) is missing" in caplog.text


async def test_easyauth_required_scope() -> None:
    needs = EasyAuthAuthenticator("oid", ["access_as_user"])
    headers = {"x-ms-client-principal": principal(ENTRA_PRINCIPAL)}
    assert (await needs.authenticate(headers)).user_id == "oid-alice"
    app_only = {"x-ms-client-principal": principal(ENTRA_PRINCIPAL[:2])}
    with pytest.raises(errors.Unauthenticated):
        await needs.authenticate(app_only)


async def test_easyauth_configured_claim() -> None:
    auth = EasyAuthAuthenticator("preferred_username")
    caller = await auth.authenticate(
        {
            "x-ms-client-principal": principal(
                [{"typ": "preferred_username", "val": "alice@x.test"}]
            ),
            "x-ms-client-principal-id": "oid-alice",
        }
    )
    assert caller.user_id == "alice@x.test"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-ms-client-principal-id": "oid-alice"},  # no principal: not from the platform
        {"x-ms-client-principal": "%%%not-base64", "x-ms-client-principal-id": "a"},
        {"x-ms-client-principal": base64.b64encode(b"[1]").decode()},
        {"x-ms-client-principal": principal([])},  # no id anywhere
        {  # nested deeper than any real principal: json.loads raised RecursionError (a 500)
            "x-ms-client-principal": base64.b64encode(
                b'{"claims": ' + b"[" * 5000 + b"]" * 5000 + b"}"
            ).decode(),
            "x-ms-client-principal-id": "oid-alice",
        },
        {  # over the size bound, though well formed
            "x-ms-client-principal": principal([{"typ": "pad", "val": "x" * 20_000}]),
            "x-ms-client-principal-id": "oid-alice",
        },
    ],
)
async def test_easyauth_refuses_missing_or_malformed(headers: dict[str, str]) -> None:
    with pytest.raises(errors.Unauthenticated):
        await EasyAuthAuthenticator().authenticate(headers)
