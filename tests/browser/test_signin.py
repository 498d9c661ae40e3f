"""Sign-in and the app token's life: the dev token renewed before it expires and after a 401;
back to sign-in with a message when it cannot be renewed (never a permanent "Loading…"); the
token budget's 429 said in a sentence; a production build (Entra app configuration baked in)
that signs in with MSAL and offers no dev sign-in; a dev build that says so against a server
without dev sign-in."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import Browser
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.browser

ENTRA_CLIENT_ID = "8b6a6c38-3c5e-4bb5-9d1b-2f5c0d6a7e11"
ENTRA_TENANT = "contoso.onmicrosoft.com"
API_SCOPE = "api://switchboard-test/access_as_user"
LOGIN = "https://login.microsoftonline.com"


def test_a_rejected_app_token_is_renewed_without_a_word(browser: Browser) -> None:
    alice = browser.user("wst-alice", "Alice")
    logins = r"POST /api/dev/login 200 "
    before = alice.log_count(logins, at_least=1)
    # The stored token no longer passes (a restarted server with new keys, say): the API
    # answers 401, the client signs the same user in again and carries on.
    alice.page.evaluate(
        """() => {
          const s = JSON.parse(sessionStorage.getItem('switchboard.devSession'));
          s.token = s.token.slice(0, -8) + 'AAAAAAAA';
          sessionStorage.setItem('switchboard.devSession', JSON.stringify(s));
        }"""
    )
    alice.page.reload()
    alice.page.get_by_test_id("profile-user").wait_for()
    assert alice.page.get_by_test_id("profile-user").inner_text() == "wst-alice"
    assert alice.page.get_by_test_id("error").count() == 0
    assert alice.log_count(r"GET /api/client-config 401 ", at_least=1) >= 1
    assert alice.log_count(logins, at_least=before + 1) == before + 1


def test_an_expiring_dev_token_is_renewed_and_an_unrenewable_one_signs_out(
    browser: Browser,
) -> None:
    alice = browser.user("wsx-alice", "Alice", fake_clock=True)
    logins = r"POST /api/dev/login 200 "
    before = alice.log_count(logins, at_least=1)
    # 56 minutes on: the next call signs in again first (the token has 4 minutes left).
    alice.page.clock.run_for(56 * 60 * 1000)
    alice.tab("friends")
    alice.page.get_by_test_id("friends").wait_for()
    assert alice.log_count(logins, at_least=before + 1) > before

    # Another hour, and the server cannot be reached for a new token: back to sign-in, said.
    alice.page.context.route("**/api/dev/login", lambda route: route.abort())
    alice.page.clock.run_for(61 * 60 * 1000)
    # The next call to the API (the list's poll, the ACS credential's refresh) finds out.
    alice.page.get_by_test_id("signin-submit").wait_for()
    assert "sign in again" in alice.page.get_by_test_id("error").inner_text()
    assert alice.page.get_by_text("Loading…").count() == 0


def _token_rate_limited(retry_after: int, times: int) -> Any:
    """A route handler answering POST /api/token as the token budget does, `times` times."""
    left = [times]

    def handle(route: Any) -> None:
        if route.request.method != "POST" or left[0] == 0:
            route.continue_()
            return
        left[0] -= 1
        route.fulfill(
            status=429,
            headers={"Retry-After": str(retry_after), "Content-Type": "application/problem+json"},
            body=json.dumps(
                {
                    "type": "urn:switchboard:problem:token_rate_limited",
                    "title": "Too many token requests",
                    "status": 429,
                    "detail": "This user asked for too many tokens; try again later.",
                    "code": "token_rate_limited",
                }
            ),
        )

    return handle


def test_the_token_budget_is_waited_out_or_said(browser: Browser) -> None:
    # A short Retry-After: the client waits it out and signs in.
    patient = browser.open("wsb-patient")
    patient.page.context.route("**/api/token", _token_rate_limited(1, times=1))
    patient.page.get_by_test_id("signin-user").fill("wsb-patient")
    patient.page.get_by_test_id("signin-submit").click()
    patient.page.get_by_test_id("who").wait_for()

    # A long one: the sign-in page says when to try again.
    limited = browser.open("wsb-limited")
    limited.page.context.route("**/api/token", _token_rate_limited(120, times=1))
    limited.page.get_by_test_id("signin-user").fill("wsb-limited")
    limited.page.get_by_test_id("signin-submit").click()
    error = limited.page.get_by_test_id("error")
    error.wait_for()
    assert "Too many token requests for now: try again in 120 s" in error.inner_text()
    assert limited.page.get_by_test_id("who").count() == 0
    limited.page.get_by_test_id("signin-submit").click()
    limited.page.get_by_test_id("who").wait_for()


def test_a_dev_build_against_a_server_without_dev_sign_in_says_so(browser: Browser) -> None:
    visitor = browser.open("wsn-visitor", record_adapters=False)

    def jwt_server(route: Any) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "auth": "jwt"})

    visitor.page.context.route("**/api/health", jwt_server)
    visitor.page.reload()
    unavailable = visitor.page.get_by_test_id("signin-unavailable")
    unavailable.wait_for()
    assert "AUTH_MODE=jwt" in unavailable.inner_text()
    assert visitor.page.get_by_test_id("signin-user").count() == 0


@pytest.fixture(scope="module")
def entra_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client built as for production: an Entra app configuration baked in."""
    out = tmp_path_factory.mktemp("entra-build")
    env = {
        **os.environ,
        "SWITCHBOARD_WEB_OUT": str(out),
        "SWITCHBOARD_ENTRA_CLIENT_ID": ENTRA_CLIENT_ID,
        "SWITCHBOARD_ENTRA_AUTHORITY": f"{LOGIN}/{ENTRA_TENANT}",
        "SWITCHBOARD_API_SCOPE": API_SCOPE,
    }
    subprocess.run(["node", "build.mjs"], cwd=ROOT / "web", env=env, check=True)
    return out


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class FakeEntra:
    """Microsoft Entra ID's endpoints as MSAL meets them, answered in the page: discovery, the
    authorize redirect (back to the app with a code) and the token endpoint, which hands out an
    app token the dev server accepts (a dev token for the Entra user)."""

    def __init__(self, app_url: str, access_token: str) -> None:
        self.app_url = app_url
        self.access_token = access_token
        self.authorize: dict[str, list[str]] = {}
        self.token_requests: list[dict[str, list[str]]] = []

    def __call__(self, route: Any) -> None:
        url = route.request.url
        tenant = f"{LOGIN}/{ENTRA_TENANT}"
        if "/discovery/instance" in url:
            route.fulfill(
                json={
                    "tenant_discovery_endpoint": f"{tenant}/v2.0/.well-known/openid-configuration",
                    "api-version": "1.1",
                    "metadata": [
                        {
                            "preferred_network": "login.microsoftonline.com",
                            "preferred_cache": "login.windows.net",
                            "aliases": ["login.microsoftonline.com", "login.windows.net"],
                        }
                    ],
                }
            )
        elif "openid-configuration" in url:
            route.fulfill(
                json={
                    "authorization_endpoint": f"{tenant}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{tenant}/oauth2/v2.0/token",
                    "end_session_endpoint": f"{tenant}/oauth2/v2.0/logout",
                    "issuer": f"{LOGIN}/tid-1/v2.0",
                    "jwks_uri": f"{tenant}/discovery/v2.0/keys",
                }
            )
        elif "/oauth2/v2.0/authorize" in url:
            self.authorize = parse_qs(urlsplit(url).query)
            state = self.authorize["state"][0]
            mode = self.authorize.get("response_mode", ["fragment"])[0]
            sep = "?" if mode == "query" else "#"
            answer = f"code=fake-code&state={state}&client_info={self._client_info()}"
            back = f"{self.app_url}{sep}{answer}"
            route.fulfill(status=302, headers={"Location": back})
        elif "/oauth2/v2.0/token" in url:
            self.token_requests.append(parse_qs(route.request.post_data or ""))
            nonce = self.authorize.get("nonce", [""])[0]
            now = int(time.time())
            id_token = ".".join(
                [
                    _b64({"alg": "none", "typ": "JWT"}),
                    _b64(
                        {
                            "aud": ENTRA_CLIENT_ID,
                            "iss": f"{LOGIN}/tid-1/v2.0",
                            "iat": now,
                            "nbf": now,
                            "exp": now + 3600,
                            "name": "Erin Entra",
                            "oid": "oid-1",
                            "preferred_username": "erin@contoso.example",
                            "sub": "sub-1",
                            "tid": "tid-1",
                            "nonce": nonce,
                        }
                    ),
                    "",
                ]
            )
            route.fulfill(
                json={
                    "token_type": "Bearer",
                    "scope": API_SCOPE,
                    "expires_in": 3600,
                    "ext_expires_in": 3600,
                    "access_token": self.access_token,
                    "id_token": id_token,
                    "client_info": self._client_info(),
                }
            )
        else:
            route.fulfill(status=404, body="")

    @staticmethod
    def _client_info() -> str:
        return _b64({"uid": "oid-1", "utid": "tid-1"})


def test_a_production_build_signs_in_with_msal(browser: Browser, entra_build: Path) -> None:
    visitor = browser.open("wse-visitor", build=entra_build)
    page = visitor.page
    page.get_by_test_id("signin-entra").wait_for()
    # A production build has no dev sign-in, whatever the server offers.
    assert page.get_by_test_id("signin-user").count() == 0
    visitor.screenshot("sign-in-entra")

    # The app token Entra would issue for this API; here one the dev server accepts.
    access_token = page.evaluate(
        """async () => (await (await fetch('/api/dev/login', {method: 'POST',
             headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({userId: 'wse-erin', displayName: 'Erin Entra'})})).json())
             .accessToken"""
    )
    entra = FakeEntra(f"{browser.base_url}/", access_token)
    page.context.route(f"{LOGIN}/**", entra)
    page.get_by_test_id("signin-entra").click()
    page.get_by_test_id("who").wait_for(timeout=30_000)

    # MSAL asked for the API's scope, with PKCE, for this app, back to the app's origin.
    assert entra.authorize["client_id"] == [ENTRA_CLIENT_ID]
    assert API_SCOPE in entra.authorize["scope"][0].split()
    assert entra.authorize["redirect_uri"] == [f"{browser.base_url}/"]
    assert entra.authorize["code_challenge_method"] == ["S256"]
    assert entra.token_requests[0]["code"] == ["fake-code"]
    assert "code_verifier" in entra.token_requests[0]
    # Every API call carried MSAL's token: the API knows the caller.
    assert page.get_by_test_id("profile-user").inner_text() == "wse-erin"
    assert page.evaluate("sessionStorage.getItem('switchboard.devSession')") is None
