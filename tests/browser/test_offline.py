"""Offline honesty: against an embedded server (client-config's endpoint is `local://embedded`)
the call and chat stages say what Switchboard did and what needs an ACS resource, and reach for
no ACS service until the person asks for the lobby; with an ACS endpoint that does not answer
(hybrid mode, offline), the real ChatComposite's failure is one sentence on the stage — never
the SDK's error, never a banner that follows to other tabs."""

from __future__ import annotations

import pytest

from tests.browser.conftest import HYBRID_ENDPOINT, Browser, User

pytestmark = pytest.mark.browser


def _befriend(one: User, other: User) -> None:
    assert one.api("PUT", f"/api/friends/{other.user_id}")["status"] == "outgoing"
    assert other.api("PUT", f"/api/friends/{one.user_id}")["status"] == "accepted"


def test_embedded_calls_and_chats_say_what_works_offline(browser: Browser) -> None:
    alice = browser.user("wco-alice", "Alice", hybrid=False)
    bob = browser.user("wco-bob", "Bob", hybrid=False)
    _befriend(alice, bob)
    page = alice.page
    page.get_by_test_id("offline-mode").wait_for()

    # A call: what worked (the friend's ACS identity from call-info), what needs ACS, and the
    # lobby only on request; the adapter factory is not called before that.
    alice.tab("friends")
    page.get_by_test_id("call-wco-bob").click()
    notice = page.get_by_test_id("stage-offline")
    notice.wait_for()
    text = notice.inner_text()
    assert "Calls need an ACS resource" in text
    assert "ACS_CONNECTION_STRING" in text
    assert "Bob's ACS identity" in page.get_by_test_id("stage-registry").inner_text()
    assert alice.recorded("calls") == []
    page.get_by_test_id("stage-lobby").click()
    page.get_by_test_id("stage-ready").wait_for()
    [call] = alice.recorded("calls")
    assert call["targetCallees"] == [
        {"communicationUserId": bob.api("GET", "/api/me")["communicationUserId"]}
    ]
    # The Calling SDK reports the call over before it connected: nothing pretends it happened.
    alice.page.evaluate(
        "window.switchboardAdapters.end(0, {remoteParticipants: 0, connected: false})"
    )
    ended = page.get_by_test_id("stage-ended")
    ended.wait_for()
    assert "No call took place" in ended.inner_text()
    assert "embedded mode" in ended.inner_text()
    page.get_by_test_id("stage-close").click()

    # A chat: the thread exists, messages need ACS; no lobby, no adapter, no error.
    page.get_by_test_id("chat-wco-bob").click()
    notice.wait_for()
    assert "Chat needs an ACS resource" in notice.inner_text()
    assert page.get_by_test_id("stage-lobby").count() == 0
    assert alice.recorded("chats") == []
    alice.screenshot("chat-offline")
    page.get_by_test_id("stage-close").click()
    assert page.get_by_test_id("error").count() == 0

    alice.tab("chats")
    assert "messages needs an ACS resource" in page.get_by_test_id("chats-embedded").inner_text()


def test_an_unreachable_chat_service_is_a_sentence_not_an_sdk_error(browser: Browser) -> None:
    """The real ChatComposite adapter (no recording factory) against an https endpoint that
    cannot be reached: the stage says so in a sentence; the tabs carry no error afterwards."""
    host = HYBRID_ENDPOINT.removeprefix("https://").rstrip("/")
    expect = (rf"^https://{host.replace('.', '[.]')}/", r"^wss?://", r"\.microsoft\.com/")
    alice = browser.user("wcu-alice", "Alice", record_adapters=False, hybrid=True, expect=expect)
    bob = browser.user("wcu-bob", "Bob", record_adapters=False, hybrid=True, expect=expect)
    _befriend(alice, bob)
    alice.tab("friends")
    alice.page.get_by_test_id("chat-wcu-bob").click()
    failed = alice.page.get_by_test_id("stage-failed")
    failed.wait_for(timeout=60_000)
    assert HYBRID_ENDPOINT in failed.inner_text()
    stage = alice.page.get_by_test_id("stage").inner_text()
    for raw in ("allowInsecureConnection", "ChatClient", "RestError", "TypeError", "undefined"):
        assert raw not in stage
    alice.page.get_by_test_id("stage-close").click()
    assert alice.page.get_by_test_id("error").count() == 0
    alice.tab("clubs")
    assert alice.page.get_by_test_id("error").count() == 0


def test_a_club_call_closed_at_the_offline_notice_is_cleared(browser: Browser) -> None:
    """Embedded: a member starts the club call (registered), reads that calls need ACS and
    closes the stage. Nobody ever joined it, so the club does not keep it."""
    alice = browser.user("wcn-alice", "Alice", hybrid=False)
    club = alice.api("POST", "/api/clubs", {"name": "Offline club", "visibility": "open"})
    club_id = club["clubId"]
    alice.tab("clubs")
    alice.page.get_by_test_id(f"club-call-{club_id}").click()
    registry = alice.page.get_by_test_id("stage-registry")
    registry.wait_for()
    active = alice.api("GET", f"/api/clubs/{club_id}/call")["groupCallId"]
    assert active in registry.inner_text()
    alice.page.get_by_test_id("stage-close").click()
    assert alice.log_count(rf"DELETE /api/clubs/{club_id}/call 204 ", at_least=1) == 1
    alice.page.get_by_test_id(f"club-call-{club_id}").filter(has_text="Start a call").wait_for()
    assert alice.recorded("calls") == []
