"""The shell as a person meets it: banners that clear on the next action or tab, confirmations
before unfriending and blocking, lists that refresh on focus and on a short poll, deep links
(`?clubId=`, `?meetingId=`, as SMS invitations send them) that open after sign-in, the SMS
outbox pointed at in dev mode, and "Call phone" only where the server has a caller id."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import Browser, User

pytestmark = pytest.mark.browser


def _friends(user: User) -> None:
    user.tab("profile")
    user.tab("friends")
    user.page.get_by_test_id("friends").wait_for()


def _befriend(one: User, other: User) -> None:
    assert one.api("PUT", f"/api/friends/{other.user_id}")["status"] == "outgoing"
    assert other.api("PUT", f"/api/friends/{one.user_id}")["status"] == "accepted"


def _outbox_code(user: User, number: str) -> str:
    outbox = user.api("GET", "/api/dev/outbox")["items"]
    [text] = [m["message"] for m in outbox if m["to"] == number]
    code = re.search(r"\b(\d{6})\b", text)
    assert code, text
    return code.group(1)


def test_banners_clear_on_the_next_action_and_the_next_tab(browser: Browser) -> None:
    alice = browser.user("wsb-alice", "Alice")
    page = alice.page
    number = "+14255550142"
    page.get_by_test_id("phone-number").fill(number)
    page.get_by_test_id("phone-submit").click()
    page.get_by_test_id("phone-code").wait_for()
    # Dev mode: the client says where the code went.
    assert "outbox" in page.get_by_test_id("phone-outbox").inner_text()
    assert page.get_by_test_id("outbox-link").get_attribute("href") == "/api/dev/outbox"

    code = _outbox_code(alice, number)
    wrong = "000000" if code != "000000" else "111111"
    page.get_by_test_id("phone-code").fill(wrong)
    page.get_by_test_id("phone-submit").click()
    assert "(400 " in page.get_by_test_id("error").inner_text()
    # The right code next: the earlier error goes, "verified" stands alone.
    page.get_by_test_id("phone-code").fill(code)
    page.get_by_test_id("phone-submit").click()
    page.get_by_test_id("profile-phone-verified").wait_for()
    assert page.get_by_test_id("error").count() == 0

    # An error, then another tab: gone.
    _friends(alice)
    page.get_by_test_id("invite-redeem-code").fill("no-such-code")
    page.get_by_test_id("invite-redeem").click()
    page.get_by_test_id("error").wait_for()
    alice.tab("clubs")
    assert page.get_by_test_id("error").count() == 0
    # And the banner's own close button.
    _friends(alice)
    page.get_by_test_id("invite-redeem-code").fill("no-such-code")
    page.get_by_test_id("invite-redeem").click()
    page.get_by_test_id("banner-close").click()
    assert page.get_by_test_id("error").count() == 0


def test_unfriend_and_block_are_asked_first(browser: Browser) -> None:
    alice = browser.user("wsc-alice", "Alice")
    bob = browser.user("wsc-bob", "Bob")
    carol = browser.user("wsc-carol", "Carol")
    _befriend(alice, bob)
    _befriend(alice, carol)
    _friends(alice)

    alice.page.get_by_test_id("unfriend-wsc-bob").click()
    assert "Unfriend Bob?" in alice.confirm(yes=False)
    assert alice.page.get_by_test_id("friend-wsc-bob").count() == 1
    alice.page.get_by_test_id("unfriend-wsc-bob").click()
    alice.confirm()
    alice.page.get_by_test_id("friend-wsc-bob").wait_for(state="detached")
    assert bob.api("GET", "/api/friends?status=accepted")["items"] == []

    alice.page.get_by_test_id("block-wsc-carol").click()
    assert "Block Carol?" in alice.confirm()
    alice.page.get_by_test_id("friend-wsc-carol").wait_for(state="detached")
    assert "Carol is blocked." in alice.page.get_by_test_id("info").inner_text()
    # Carol's request is refused (to her, as if Alice did not exist).
    assert carol.api("PUT", "/api/friends/wsc-alice")["status"] == 404

    # Unblock by id: Carol may ask again.
    alice.page.get_by_test_id("block-user").fill("wsc-carol")
    alice.page.get_by_test_id("unblock-send").click()
    alice.page.get_by_test_id("info").filter(has_text="unblocked").wait_for()
    assert carol.api("PUT", "/api/friends/wsc-alice")["status"] == "outgoing"


def test_lists_refresh_on_focus_and_on_a_short_poll(browser: Browser) -> None:
    alice = browser.user("wsr-alice", "Alice")
    bob = browser.user("wsr-bob", "Bob", fake_clock=True)
    _friends(bob)
    assert alice.api("PUT", "/api/friends/wsr-bob")["status"] == "outgoing"
    # The window regains focus: the list asks again.
    bob.page.evaluate("window.dispatchEvent(new Event('focus'))")
    bob.page.get_by_test_id("incoming-wsr-alice").wait_for()

    carol = browser.user("wsr-carol", "Carol")
    assert carol.api("PUT", "/api/friends/wsr-bob")["status"] == "outgoing"
    assert bob.page.get_by_test_id("incoming-wsr-carol").count() == 0
    # Ten seconds later (the page's clock), the poll has brought it.
    bob.page.clock.run_for(10_500)
    bob.page.get_by_test_id("incoming-wsr-carol").wait_for()


def test_a_club_link_opens_the_club_after_sign_in(browser: Browser) -> None:
    owner = browser.user("wsd-owner", "Owner")
    club: dict[str, Any] = owner.api("POST", "/api/clubs", {"name": "Linked", "visibility": "open"})
    club_id = club["clubId"]
    # What an SMS invitation carries: the app's address with ?clubId=.
    guest = browser.user("wsd-guest", "Guest", path=f"/?clubId={club_id}")
    assert guest.page.evaluate("location.search") == ""
    detail = guest.page.get_by_test_id("club-detail")
    detail.wait_for()
    assert guest.page.get_by_test_id("club-detail-name").inner_text() == "Linked"
    guest.page.get_by_test_id("club-detail-join").click()
    guest.page.get_by_test_id(f"club-{club_id}").wait_for()
    assert guest.api("GET", f"/api/clubs/{club_id}")["role"] == "member"

    # An invite-only club the visitor is not invited to: said plainly, nothing else shown.
    secret = owner.api("POST", "/api/clubs", {"name": "Secret", "visibility": "invite"})
    stranger = browser.user("wsd-stranger", "Stranger", path=f"/?clubId={secret['clubId']}")
    stranger.page.locator("[data-testid=club-detail][data-state=missing]").wait_for()
    assert "Secret" not in stranger.page.get_by_test_id("club-detail").inner_text()


def test_a_meeting_link_opens_the_meeting_after_sign_in(browser: Browser) -> None:
    alice = browser.user("wsm-alice", "Alice")
    browser.user("wsm-bob", "Bob")  # invitees are users who have signed in once
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    meeting = alice.api(
        "POST",
        "/api/meetings",
        {
            "subject": "Linked meeting",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "invitees": ["wsm-bob"],
        },
    )
    meeting_id = meeting["meetingId"]
    # Bob follows the link in a new window, and signs in there.
    bob = browser.user("wsm-bob", "Bob", path=f"/?meetingId={meeting_id}")
    linked = bob.page.get_by_test_id("meeting-linked")
    linked.wait_for()
    row = linked.get_by_test_id(f"meeting-{meeting_id}")
    row.wait_for()
    assert "Linked meeting" in row.inner_text()
    row.get_by_test_id(f"meeting-join-{meeting_id}").click()
    bob.page.get_by_test_id("stage-ready").wait_for()
    assert bob.recorded("calls")[0]["locator"] == {"meetingLink": meeting["joinUrl"]}

    carol = browser.user("wsm-carol", "Carol", path=f"/?meetingId={meeting_id}")
    carol.page.get_by_test_id("meeting-linked").get_by_text("No meeting").wait_for()


def test_call_phone_only_where_the_server_has_a_caller_id(browser: Browser) -> None:
    alice = browser.user("wsp-alice", "Alice")
    bob = browser.user("wsp-bob", "Bob")
    _befriend(alice, bob)
    _friends(alice)
    alice.page.get_by_test_id("call-phone-wsp-bob").wait_for()

    def without_caller_id(route: Any) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "pstnCallerId": None})

    alice.page.context.route("**/api/client-config", without_caller_id)
    alice.page.reload()
    alice.page.get_by_test_id("who").wait_for()
    _friends(alice)
    alice.page.get_by_test_id("call-wsp-bob").wait_for()
    assert alice.page.get_by_test_id("call-phone-wsp-bob").count() == 0
