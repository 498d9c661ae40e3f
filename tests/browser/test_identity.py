"""The web client's sign-in and profile in the browser, and the real ACS Calling SDK (1.x, in
the client's bundle) accepting a token from the local issuer."""

from __future__ import annotations

import base64
import json

import pytest

from tests.browser.conftest import Browser

pytestmark = pytest.mark.browser

# Where the Calling SDK goes once it has accepted a token: its config service, the token
# exchange and the Trouter push channel. Blocked (offline), and expected in this test only.
ACS_SERVICES = (
    r"^https://[a-z0-9.-]+\.communication\.microsoft\.com/",
    r"^https://edge\.skype\.com/",
    r"^wss?://[a-z0-9.-]+\.communication\.microsoft\.com/",
    r"^https://[a-z0-9.-]+\.events\.data\.microsoft\.com/",  # the SDK's telemetry
)

TEAMS_LINK = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjE5%40thread.v2/0"
    "?context=%7b%22Tid%22%3a%22t%22%2c%22Oid%22%3a%22o%22%7d"
)


def _with_claims(token: str, **claims: str) -> str:
    """The token with some payload claims replaced (the Calling SDK never checks signatures)."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    encoded = base64.urlsafe_b64encode(json.dumps({**decoded, **claims}).encode()).decode()
    return f"{header}.{encoded.rstrip('=')}.{signature}"


def test_sign_in_shows_the_callers_profile_and_renames(browser: Browser) -> None:
    alice = browser.user("wc-alice", "Alice")
    page = alice.page
    page.get_by_test_id("profile").wait_for()
    assert page.get_by_test_id("profile-user").inner_text() == "wc-alice"
    assert page.get_by_test_id("profile-name").inner_text() == "Alice"
    assert page.get_by_test_id("profile-acs").inner_text().startswith("8:acs:")
    alice.screenshot("profile")

    page.get_by_test_id("profile-new-name").fill("Alice Liddell")
    page.get_by_test_id("profile-save").click()
    page.get_by_test_id("profile-name").filter(has_text="Alice Liddell").wait_for()

    # A second user, in a browser context of their own, sees only themselves.
    bob = browser.user("wc-bob", "Bob")
    bob.page.get_by_test_id("profile").wait_for()
    assert bob.page.get_by_test_id("profile-user").inner_text() == "wc-bob"
    assert bob.page.get_by_test_id("profile-name").inner_text() == "Bob"
    assert (
        bob.page.get_by_test_id("profile-acs").inner_text()
        != page.get_by_test_id("profile-acs").inner_text()
    )


def test_the_sign_in_page_shows_the_apis_refusal(browser: Browser) -> None:
    visitor = browser.open("visitor")
    visitor.page.get_by_test_id("signin-user").wait_for()
    visitor.screenshot("sign-in")
    visitor.page.get_by_test_id("signin-user").fill("a/b")
    visitor.page.get_by_test_id("signin-submit").click()
    assert "(400 " in visitor.page.get_by_test_id("error").inner_text()
    assert visitor.page.get_by_test_id("who").count() == 0


def test_the_calling_sdk_accepts_a_local_token_and_refuses_a_space_separated_scope(
    browser: Browser,
) -> None:
    """The client's real call adapter (no recording factory) on a local token: the Calling SDK
    parses it (scopes, skypeid, resourceId, resourceLocation, exp), builds its CallAgent and the
    CallComposite shows its lobby; only the network it then reaches for is missing."""
    alice = browser.user("wc-caller", "Caller", expect=ACS_SERVICES, record_adapters=False)
    page = alice.page
    token = alice.api("POST", "/api/token")["token"]

    # What the issuer wrote before the fix: the SDK refuses it before sending anything.
    refused = page.evaluate(
        "t => window.switchboard.probeCallAgent(t)", _with_claims(token, acsScope="chat voip")
    )
    assert (refused["code"], refused["subCode"]) == (401, 44113), refused
    assert alice.blocked == []

    alice.tab("meetings")
    page.get_by_test_id("meeting-link").fill(TEAMS_LINK)
    page.get_by_test_id("meeting-link-join").click()
    # Embedded mode: the stage says what works offline before anything reaches for ACS.
    page.get_by_test_id("stage-offline").wait_for()
    alice.screenshot("call-offline")
    assert alice.blocked == []
    page.get_by_test_id("stage-lobby").click()
    # The composite's own lobby, rendered with its bundled icons and no web fonts.
    page.get_by_role("button", name="Start call").wait_for(timeout=60_000)
    assert page.get_by_test_id("stage").get_by_text("Connecting").count() == 0
    alice.screenshot("call")
    assert any("communication.microsoft.com" in url for url in alice.blocked), alice.blocked


def test_the_acs_credential_refreshes_its_token_through_the_api(browser: Browser) -> None:
    """The AzureCommunicationTokenCredential's tokenRefresher is POST /api/token: moved past
    most of the first token's hour, the credential (refreshProactively) asks for the next one."""
    user = browser.user("wc-refresh", "Refresh", fake_clock=True)
    token_requests = r"POST /api/token 200 "
    before = user.log_count(token_requests, at_least=1)
    user.page.clock.run_for(55 * 60 * 1000)
    assert user.log_count(token_requests, at_least=before + 1) > before


def test_revoking_tokens_and_erasing_the_account_are_asked_first(browser: Browser) -> None:
    user = browser.user("wc-revoker", "Revoker")
    page = user.page
    before = user.log_count(r"POST /api/token 200 ", at_least=1)
    page.get_by_test_id("tokens-revoke").click()
    assert "Revoke every ACS token" in user.confirm(yes=False)
    assert user.log_count(r"POST /api/token/revoke ") == 0
    page.get_by_test_id("tokens-revoke").click()
    user.confirm()
    page.get_by_test_id("info").filter(has_text="now uses a new one").wait_for()
    assert user.log_count(r"POST /api/token/revoke 204 ", at_least=1) == 1
    # The page's ACS credential holds a token issued after the revocation.
    assert user.log_count(r"POST /api/token 200 ", at_least=before + 1) > before

    acs_id = page.get_by_test_id("profile-acs").inner_text()
    page.get_by_test_id("account-erase").click()
    assert "Erase your account" in user.confirm()
    page.get_by_test_id("signin-submit").wait_for()
    assert user.log_count(r"DELETE /api/me 204 ", at_least=1) >= 1
    # Signing in again is a new start: a new ACS identity.
    page.get_by_test_id("signin-user").fill("wc-revoker")
    page.get_by_test_id("signin-submit").click()
    page.get_by_test_id("profile-acs").wait_for()
    assert page.get_by_test_id("profile-acs").inner_text() not in ("", acs_id)
