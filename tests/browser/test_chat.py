"""Chat in the browser: a friend's Chat button makes the pair's direct thread (PUT …/thread) and
the other friend finds it in GET /api/threads; both ChatComposite adapters are handed that
thread id and the endpoint of GET /api/client-config (here an https one: hybrid mode, as the
client sees it). A third user sees no thread. Offline honesty: test_offline.py."""

from __future__ import annotations

import pytest

from tests.browser.conftest import HYBRID_ENDPOINT, Browser, User

pytestmark = pytest.mark.browser


def _befriend(one: User, other: User) -> None:
    assert one.api("PUT", f"/api/friends/{other.user_id}")["status"] == "outgoing"
    assert other.api("PUT", f"/api/friends/{one.user_id}")["status"] == "accepted"


def test_a_direct_chat_opens_for_both_friends_in_the_chat_composite(browser: Browser) -> None:
    alice = browser.user("wch-alice", "Alice")
    bob = browser.user("wch-bob", "Bob")
    carol = browser.user("wch-carol", "Carol")
    _befriend(alice, bob)
    # The client read the config: no "missing client-config" notice, no embedded-mode notice.
    assert alice.page.get_by_test_id("config-defaulted").count() == 0
    assert alice.page.get_by_test_id("offline-mode").count() == 0

    alice.tab("friends")
    alice.page.get_by_test_id("chat-wch-bob").click()
    alice.page.get_by_test_id("stage-ready").wait_for()
    [chat] = alice.recorded("chats")
    assert chat["endpoint"] == HYBRID_ENDPOINT
    assert chat["hasToken"]
    thread_id = chat["threadId"]
    assert thread_id

    bob.tab("chats")
    bob.page.get_by_test_id(f"thread-{thread_id}").wait_for()
    bob.screenshot("chats")
    bob.page.get_by_test_id(f"thread-open-{thread_id}").click()
    bob.page.get_by_test_id("stage-ready").wait_for()
    [bob_chat] = bob.recorded("chats")
    assert bob_chat["threadId"] == thread_id
    assert bob_chat["userId"] == {
        "communicationUserId": bob.api("GET", "/api/me")["communicationUserId"]
    }

    carol.tab("chats")
    carol.page.get_by_text("No chats yet").wait_for()
    assert carol.page.get_by_test_id(f"thread-{thread_id}").count() == 0
