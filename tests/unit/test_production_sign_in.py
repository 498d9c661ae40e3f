"""Production sign-in (issue 21, part A) against a local OIDC issuer over HTTPS: a throwaway CA,
discovery and JWKS served over TLS, tokens minted with PyJWT (tests/oidc_issuer.py).

Every item of part A has its tests here: delegated scopes (A1), one user claim in both modes (A2),
https all the way (A3), no silent dev mode (A4), the start-up check and refusal logs (A5), the key
cache (A6), algorithms by key type (A7), the easyauth refusal outside Azure (A10). A8 (the
embedded Teams exchange) is in tests/adapters/test_acs_local.py and the identity service tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard import errors
from switchboard.adapters.acs_local import LocalIdentityIssuer
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.auth import (
    EASYAUTH_CLAIM_ALIASES,
    EasyAuthAuthenticator,
    RemoteJwksKeySource,
    TokenVerifier,
)
from switchboard.runtime import Adapters, Runtime, build_authenticator, get_runtime, set_runtime
from switchboard.settings import Settings, load_settings
from tests.conftest import Client
from tests.oidc_issuer import (
    AUDIENCE,
    HttpsIssuer,
    SigningKey,
    ec_signing_key,
    https_issuer,
    rsa_signing_key,
)


@pytest.fixture(scope="module")
def k1() -> SigningKey:
    return rsa_signing_key("k1")


@pytest.fixture(scope="module")
def k2() -> SigningKey:
    return rsa_signing_key("k2")


@pytest.fixture
def issuer(tmp_path: Path, k1: SigningKey) -> Iterator[HttpsIssuer]:
    with https_issuer(tmp_path, [k1]) as running:
        yield running


def source(issuer: HttpsIssuer, jwks_url: str | None = None) -> RemoteJwksKeySource:
    return RemoteJwksKeySource(
        issuer.issuer, jwks_url, ssl_context=issuer.pki.client_context(), timeout=2
    )


def verifier(
    issuer: HttpsIssuer,
    keys: RemoteJwksKeySource | None = None,
    *,
    claim: str = "sub",
    scopes: tuple[str, ...] = (),
) -> TokenVerifier:
    return TokenVerifier(keys or source(issuer), issuer.issuer, AUDIENCE, claim, scopes)


async def test_a_delegated_token_over_tls_names_its_user(issuer: HttpsIssuer) -> None:
    caller = await verifier(issuer).verify(issuer.mint())
    assert (caller.user_id, caller.name) == ("sub-alice", "Alice")
    assert issuer.hits == ["/tenant/v2.0/.well-known/openid-configuration", "/keys"]


# --- A1: scopes and roles ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"scp": None},  # an app-only Entra token: tid, no scp (any app in the tenant gets one)
        {"scp": None, "roles": ["Things.Read"]},
        {"idtyp": "app"},
        {"idtyp": "app", "scp": None, "tid": None},
    ],
)
async def test_app_only_tokens_are_refused(
    issuer: HttpsIssuer, overrides: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.auth")
    with pytest.raises(errors.Unauthenticated, match="application"):
        await verifier(issuer).verify(issuer.mint(**overrides))
    assert "token refused: app-only token" in caplog.text


async def test_the_required_scope(issuer: HttpsIssuer) -> None:
    strict = verifier(issuer, scopes=("access_as_user",))
    assert (await strict.verify(issuer.mint())).user_id == "sub-alice"
    assert (await strict.verify(issuer.mint(scp="User.Read access_as_user"))).user_id
    with pytest.raises(errors.Unauthenticated, match="scope"):
        await strict.verify(issuer.mint(scp="User.Read"))
    # Issuers other than Entra put delegated scopes in OAuth's `scope`.
    other = issuer.mint(scp=None, tid=None, scope="openid access_as_user")
    assert (await strict.verify(other)).user_id == "sub-alice"
    with pytest.raises(errors.Unauthenticated):
        await strict.verify(issuer.mint(scp=None, tid=None, scope="openid"))


def _jwt_runtime(tmp_path: Path, issuer: HttpsIssuer, **settings: str) -> Runtime:
    chosen = Settings.from_environ(
        {
            "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
            "AUTH_MODE": "jwt",
            "AUTH_ISSUER": issuer.issuer,
            "AUTH_AUDIENCE": AUDIENCE,
            **settings,
        }
    )
    (tmp_path / "data").mkdir(exist_ok=True)
    adapters = Adapters(
        store=SqliteStore(tmp_path / "data" / "s.sqlite"),
        identity_provider=LocalIdentityIssuer(tmp_path / "data"),
        authenticator=build_authenticator(chosen, None),
    )
    return Runtime(chosen, adapters)


@pytest.fixture
async def jwt_client(
    tmp_path: Path, issuer: HttpsIssuer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Client]:
    # The production guide's way to trust a private CA: SSL_CERT_FILE names a bundle with it.
    monkeypatch.setenv("SSL_CERT_FILE", str(issuer.pki.ca_file))
    rt = _jwt_runtime(tmp_path, issuer, AUTH_REQUIRED_SCOPE="access_as_user")
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


async def test_the_token_route_in_jwt_mode_with_a_private_ca(
    jwt_client: Client, issuer: HttpsIssuer
) -> None:
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    ok = await jwt_client.request("POST", "/api/token", headers=bearer(issuer.mint()))
    assert ok.status == 200
    me = await jwt_client.request("GET", "/api/me", headers=bearer(issuer.mint()))
    assert me.json()["userId"] == "sub-alice"
    for token in (issuer.mint(scp=None), issuer.mint(scp="User.Read")):
        refused = await jwt_client.request("POST", "/api/token", headers=bearer(token))
        assert refused.status == 401
        assert refused.json()["code"] == "unauthenticated"


# --- A2: one user id whatever the mode --------------------------------------------------------


def _easyauth_principal(claims: dict[str, Any]) -> dict[str, str]:
    """What App Service makes of a token: some claims under their long names, the principal id
    header set to the object id."""
    listed = [
        {"typ": EASYAUTH_CLAIM_ALIASES.get(name, name), "val": value}
        for name, value in claims.items()
        if isinstance(value, str)
    ]
    data = {"auth_typ": "aad", "claims": listed, "name_typ": "name", "role_typ": "roles"}
    return {
        "x-ms-client-principal": base64.b64encode(json.dumps(data).encode()).decode(),
        "x-ms-client-principal-id": claims["oid"],
    }


@pytest.mark.parametrize("claim", ["sub", "oid"])
async def test_the_user_claim_names_the_same_user_in_jwt_and_easyauth(
    issuer: HttpsIssuer, claim: str
) -> None:
    token = issuer.mint()
    in_jwt = await verifier(issuer, claim=claim).verify(token)
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    in_easyauth = await EasyAuthAuthenticator(claim).authenticate(_easyauth_principal(claims))
    assert in_jwt.user_id == in_easyauth.user_id == claims[claim]


def test_a_user_claim_dev_tokens_cannot_carry_stops_start_up() -> None:
    with pytest.raises(errors.ConfigurationError, match="AUTH_USER_CLAIM"):
        Settings.from_environ({"AUTH_MODE": "dev", "AUTH_USER_CLAIM": "oid"})
    with pytest.raises(errors.ConfigurationError, match="AUTH_USER_CLAIM"):
        Settings.from_environ({"AUTH_USER_CLAIM": "oid"})


# --- A3: https all the way --------------------------------------------------------------------


def _plain_http_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_redirect_off_https_is_refused(
    issuer: HttpsIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.documents["/tenant/v2.0/.well-known/openid-configuration"] = {
        "issuer": issuer.issuer,
        "jwks_uri": issuer.origin + "/moved",
    }
    issuer.documents["/moved"] = ("redirect", f"http://127.0.0.1:{_plain_http_port()}/keys")
    with pytest.raises(errors.ConfigurationError, match="not https"):
        source(issuer).check()
    with pytest.raises(errors.DependencyUnavailable):
        await verifier(issuer).verify(issuer.mint())
    assert "redirects to a URL that is not https" in caplog.text


async def test_a_redirect_to_https_is_followed(issuer: HttpsIssuer) -> None:
    issuer.documents["/moved"] = ("redirect", issuer.jwks_url)
    keys = source(issuer, jwks_url=issuer.origin + "/moved")
    assert (await verifier(issuer, keys).verify(issuer.mint())).user_id == "sub-alice"


async def test_an_http_jwks_uri_in_discovery_is_refused(issuer: HttpsIssuer) -> None:
    issuer.documents["/tenant/v2.0/.well-known/openid-configuration"] = {
        "issuer": issuer.issuer,
        "jwks_uri": "http://keys.example.test/keys",
    }
    with pytest.raises(errors.ConfigurationError, match="not https"):
        source(issuer).check()


# --- A4: no silent dev mode; the start-up line ------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"AUTH_ISSUER": "https://login.example.test/t/v2.0", "AUTH_AUDIENCE": AUDIENCE},
        {"AUTH_AUDIENCE": AUDIENCE},
        {"AUTH_JWKS_URL": "https://login.example.test/keys"},
        {"AUTH_REQUIRED_SCOPE": "access_as_user"},
    ],
)
def test_production_auth_settings_without_auth_mode_stop_start_up(values: dict[str, str]) -> None:
    with pytest.raises(errors.ConfigurationError, match="AUTH_MODE is not set") as caught:
        Settings.from_environ(values)
    assert "anyone mints tokens" in str(caught.value)
    # Dev sign-in with them, on purpose, stays possible.
    assert Settings.from_environ({**values, "AUTH_MODE": "dev"}).auth_mode == "dev"


@pytest.fixture
def process_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The process's own settings (get_runtime), cleaned up after."""
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path / "proc"))
    load_settings.cache_clear()
    set_runtime(None)
    yield monkeypatch
    set_runtime(None)
    load_settings.cache_clear()


def test_start_up_checks_the_issuer_and_names_the_auth_mode(
    process_env: pytest.MonkeyPatch, issuer: HttpsIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard")
    for name, value in {
        "AUTH_MODE": "jwt",
        "AUTH_ISSUER": issuer.issuer,
        "AUTH_AUDIENCE": AUDIENCE,
        "SSL_CERT_FILE": str(issuer.pki.ca_file),
    }.items():
        process_env.setenv(name, value)
    runtime = get_runtime()
    assert runtime.settings.auth_mode == "jwt"
    assert f"auth jwt (issuer {issuer.issuer}, audience {AUDIENCE}" in caplog.text
    assert "sign-in provider checked: 1 signing key(s)" in caplog.text
    assert issuer.hits == ["/tenant/v2.0/.well-known/openid-configuration", "/keys"]


def test_start_up_refuses_an_issuer_off_by_a_slash(
    process_env: pytest.MonkeyPatch, issuer: HttpsIssuer
) -> None:
    for name, value in {
        "AUTH_MODE": "jwt",
        "AUTH_ISSUER": issuer.issuer + "/",
        "AUTH_AUDIENCE": AUDIENCE,
        "SSL_CERT_FILE": str(issuer.pki.ca_file),
    }.items():
        process_env.setenv(name, value)
    with pytest.raises(errors.ConfigurationError, match="character for character"):
        get_runtime()
    # Kept: the next requests are refused the same way without asking the issuer again.
    fetched = len(issuer.hits)
    for _ in range(3):
        with pytest.raises(errors.ConfigurationError, match="character for character"):
            get_runtime()
    assert len(issuer.hits) == fetched


def test_dev_mode_says_so_on_the_start_up_line(
    process_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard")
    get_runtime()
    assert "auth dev (anyone can sign in as anyone: development only)" in caplog.text


# --- A5: misconfiguration is not an outage; refusals say why ----------------------------------


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (None, "HTTP 404"),
        ({"jwks_uri": None}, "has no jwks_uri"),
        ({"issuer": "https://login.example.test/other/v2.0"}, "character for character"),
        (b"<html>sign in</html>", "not JSON"),
    ],
)
def test_start_up_check_names_a_misconfiguration(
    issuer: HttpsIssuer, document: Any, problem: str
) -> None:
    path = "/tenant/v2.0/.well-known/openid-configuration"
    if document is None:
        issuer.mode = "missing"
    elif isinstance(document, dict):
        issuer.documents[path] = {
            k: v
            for k, v in {"issuer": issuer.issuer, "jwks_uri": issuer.jwks_url, **document}.items()
            if v is not None
        }
    else:
        issuer.documents[path] = document
    with pytest.raises(errors.ConfigurationError, match=problem):
        source(issuer).check()


def test_an_untrusted_certificate_says_how_to_trust_a_private_ca(issuer: HttpsIssuer) -> None:
    untrusting = RemoteJwksKeySource(issuer.issuer, timeout=2)  # the system's trust store only
    with pytest.raises(errors.ConfigurationError, match="SSL_CERT_FILE"):
        untrusting.check()


def test_an_issuer_that_is_only_down_at_start_up_is_logged_not_fatal(
    issuer: HttpsIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.mode = "down"
    source(issuer).check()
    assert "not reachable at start-up" in caplog.text
    closed = RemoteJwksKeySource(f"https://127.0.0.1:{_plain_http_port()}/t/v2.0", timeout=1)
    closed.check()


async def test_a_token_refused_for_its_issuer_says_so_in_the_log(
    issuer: HttpsIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.auth")
    keys = source(issuer, jwks_url=issuer.jwks_url)
    slash = TokenVerifier(keys, issuer.issuer + "/", AUDIENCE)
    with pytest.raises(errors.Unauthenticated):
        await slash.verify(issuer.mint())
    assert f"iss {issuer.issuer} is not AUTH_ISSUER {issuer.issuer}/" in caplog.text
    with pytest.raises(errors.Unauthenticated):
        await verifier(issuer, keys).verify(issuer.mint(aud="api://other\nforged line"))
    assert "aud api://other\\nforged line is not AUTH_AUDIENCE" in caplog.text
    token = issuer.mint(exp=1)
    with pytest.raises(errors.Unauthenticated):
        await verifier(issuer, keys).verify(token)
    assert "token refused: expired" in caplog.text
    assert token not in caplog.text


async def test_a_hanging_issuer_is_a_503_within_the_bound(issuer: HttpsIssuer) -> None:
    issuer.mode = "hang"
    keys = source(issuer)
    keys.WAIT_SECONDS = 0.5
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(errors.DependencyUnavailable):
        await verifier(issuer, keys).verify(issuer.mint())
    assert loop.time() - started < 2
    issuer.release()


# --- A6: the key cache ------------------------------------------------------------------------


async def _settle() -> None:
    """Let a background renewal (a thread) finish."""
    for _ in range(100):
        await asyncio.sleep(0.02)
        if not any(t for t in asyncio.all_tasks() if "_load" in repr(t)):
            return


async def test_cached_keys_serve_through_an_issuer_outage(
    issuer: HttpsIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    keys = source(issuer)
    check = verifier(issuer, keys)
    await check.verify(issuer.mint())
    issuer.mode = "down"
    keys._fetched_at -= keys.KEY_LIFETIME_SECONDS + 1  # the hour is up
    for _ in range(5):  # every request answered from the cache, none waits for the issuer
        assert (await check.verify(issuer.mint())).user_id == "sub-alice"
    await _settle()
    assert issuer.hits.count("/tenant/v2.0/.well-known/openid-configuration") == 2  # one renewal
    assert "serving the 1 cached key(s)" in caplog.text
    assert (await check.verify(issuer.mint())).user_id == "sub-alice"
    # Past the stale limit the cache is not trusted any more.
    keys._fetched_at -= keys.MAX_STALE_SECONDS
    keys._failed_until = 0
    with pytest.raises(errors.DependencyUnavailable):
        await check.verify(issuer.mint())


async def test_a_withdrawn_key_stops_working_at_the_renewal(
    issuer: HttpsIssuer, k1: SigningKey, k2: SigningKey
) -> None:
    keys = source(issuer)
    check = verifier(issuer, keys)
    await check.verify(issuer.mint(k1))
    issuer.keys = [k2]  # the issuer withdraws k1
    assert (await check.verify(issuer.mint(k1))).user_id  # within the hour: still valid
    keys._fetched_at -= keys.KEY_LIFETIME_SECONDS + 1
    await check.verify(issuer.mint(k1))  # served while the renewal runs
    await _settle()
    with pytest.raises(errors.Unauthenticated, match="unknown key"):
        await check.verify(issuer.mint(k1))
    assert (await check.verify(issuer.mint(k2))).user_id


async def test_a_new_key_is_refused_at_most_a_minute(
    issuer: HttpsIssuer, k1: SigningKey, k2: SigningKey
) -> None:
    keys = source(issuer)
    check = verifier(issuer, keys)
    await check.verify(issuer.mint(k1))
    issuer.keys = [k1, k2]  # rotation: k2 published
    with pytest.raises(errors.Unauthenticated):
        await check.verify(issuer.mint(k2))  # fetched under a minute ago: no refetch
    keys._fetched_at -= keys.MIN_REFETCH_SECONDS
    assert (await check.verify(issuer.mint(k2))).user_id  # one refetch, then accepted


# --- A7: algorithms ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
async def test_an_rsa_key_without_alg_takes_every_rsa_algorithm(
    issuer: HttpsIssuer, alg: str
) -> None:
    assert "alg" not in issuer.keys[0].jwk
    assert (await verifier(issuer).verify(issuer.mint(alg=alg))).user_id == "sub-alice"


async def test_a_stated_alg_and_the_key_type_bound_the_algorithms(tmp_path: Path) -> None:
    stated, curve = rsa_signing_key("rs", alg="RS256"), ec_signing_key("ec")
    with https_issuer(tmp_path, [stated, curve]) as running:
        check = verifier(running)
        assert (await check.verify(running.mint(stated))).user_id
        assert (await check.verify(running.mint(curve, alg="ES256"))).user_id
        for key, alg in ((stated, "PS256"), (stated, "RS512")):
            with pytest.raises(errors.Unauthenticated, match="does not match"):
                await check.verify(running.mint(key, alg=alg))


# --- A10: easyauth outside Azure --------------------------------------------------------------


def test_easyauth_outside_azure_is_refused_unless_a_test_says_so() -> None:
    with pytest.raises(errors.ConfigurationError, match="anyone could sign in as anyone"):
        Settings.from_environ({"AUTH_MODE": "easyauth", "WEBSITE_AUTH_ENABLED": "true"})
    trusted = Settings.from_environ(
        {"AUTH_MODE": "easyauth", "SWITCHBOARD_TRUST_PRINCIPAL_HEADERS": "true"}
    )
    assert "TRUSTED (test only)" in trusted.describe_auth()
