"""Phone-sized (390 x 844): no view scrolls sideways, the header collapses behind a Menu button
that holds the tabs and Sign out, and rows of buttons wrap inside their cards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import PHONE, Browser, User

pytestmark = pytest.mark.browser


def _fits(user: User, view: str) -> None:
    assert user.overflow() == 0, f"{view} is wider than the phone"
    user.screenshot(f"phone-{view}")


def test_every_view_fits_a_phone(browser: Browser) -> None:
    visitor = browser.open("wph-visitor", viewport=PHONE)
    visitor.page.get_by_test_id("signin-user").wait_for()
    _fits(visitor, "sign-in")

    bob = browser.user("wph-bob-with-a-rather-long-user-id", "Bob Longname-Doublebarrel")
    alice = browser.user("wph-alice", "Alice", viewport=PHONE, hybrid=False)
    page = alice.page
    assert alice.api("PUT", f"/api/friends/{bob.user_id}")["status"] == "outgoing"
    assert bob.api("PUT", "/api/friends/wph-alice")["status"] == "accepted"
    dora = browser.user("wph-dora", "Dora")
    assert dora.api("PUT", "/api/friends/wph-alice")["status"] == "outgoing"
    club = alice.api("POST", "/api/clubs", {"name": "A long-named club", "visibility": "open"})
    now = datetime.now(UTC).replace(microsecond=0)
    alice.api(
        "POST",
        "/api/meetings",
        {
            "subject": "Phone standup",
            "start": (now - timedelta(minutes=5)).isoformat(),
            "end": (now + timedelta(minutes=25)).isoformat(),
            "invitees": [bob.user_id],
        },
    )

    # The header: brand and Menu; the tabs and Sign out only inside the menu.
    assert page.get_by_test_id("menu").is_visible()
    assert not page.get_by_test_id("tab-friends").is_visible()
    assert not page.get_by_test_id("sign-out").is_visible()
    page.get_by_test_id("profile").wait_for()
    _fits(alice, "profile")
    page.get_by_test_id("menu").click()
    assert page.get_by_test_id("sign-out").is_visible()
    _fits(alice, "menu")
    page.get_by_test_id("tab-friends").click()
    assert not page.get_by_test_id("tab-clubs").is_visible()  # the menu closes on a choice

    page.get_by_test_id(f"friend-{bob.user_id}").wait_for()
    page.get_by_test_id("incoming-wph-dora").wait_for()
    _fits(alice, "friends")
    page.get_by_test_id(f"unfriend-{bob.user_id}").click()
    page.get_by_test_id("confirm").wait_for()
    _fits(alice, "confirm")
    alice.confirm(yes=False)

    alice.tab("clubs")
    page.get_by_test_id(f"club-open-{club['clubId']}").click()
    page.get_by_test_id("club-members").wait_for()
    _fits(alice, "clubs")

    alice.tab("meetings")
    page.get_by_text("Phone standup").wait_for()
    _fits(alice, "meetings")

    alice.tab("chats")
    page.get_by_test_id("chats").wait_for()
    _fits(alice, "chats")

    alice.tab("friends")
    page.get_by_test_id(f"call-{bob.user_id}").click()
    page.get_by_test_id("stage-offline").wait_for()
    _fits(alice, "call-offline")


def test_the_actions_work_on_a_phone(browser: Browser) -> None:
    """The same flows as at 1280 px, at 390 px: a deep link opening a club to join, a club call
    started and cleared by the last one out, a banner cleared by the next tab (through the
    menu), a confirmation, a meeting scheduled, and the SMS outbox pointed at."""
    owner = browser.user("wpa-owner", "Owner")
    club = owner.api("POST", "/api/clubs", {"name": "Pocket club", "visibility": "open"})
    club_id = club["clubId"]
    guest = browser.user("wpa-guest", "Guest", viewport=PHONE, path=f"/?clubId={club_id}")
    page = guest.page
    page.get_by_test_id("club-detail-join").click()
    page.get_by_test_id(f"club-{club_id}").wait_for()
    assert guest.overflow() == 0

    # A club call, and the last one out clears it.
    page.get_by_test_id("club-detail-call").click()
    page.get_by_test_id("stage-ready").wait_for()
    assert guest.overflow() == 0
    page.evaluate("window.switchboardAdapters.end(0, {remoteParticipants: 0, connected: true})")
    page.get_by_test_id("stage-ended").wait_for()
    assert guest.log_count(rf"DELETE /api/clubs/{club_id}/call 204 ", at_least=1) == 1
    page.get_by_test_id("stage-close").click()

    # An SMS invitation, pointed at the outbox; then leaving, asked first.
    page.get_by_test_id("sms-invite-to").fill("+14255550166")
    page.get_by_test_id("sms-invite-send").click()
    page.get_by_test_id("outbox-link").wait_for()
    page.get_by_test_id("club-leave").click()
    assert "Leave Pocket club?" in guest.confirm(yes=False)

    # A banner, then another tab through the menu: gone.
    page.get_by_test_id("club-join-id").fill("no-such-club")
    page.get_by_test_id("club-join").click()
    page.get_by_test_id("error").wait_for()
    assert guest.overflow() == 0
    guest.tab("meetings")
    assert page.get_by_test_id("error").count() == 0

    # A meeting scheduled from the phone.
    page.get_by_test_id("schedule-subject").fill("Walk and talk")
    page.get_by_test_id("schedule-submit").click()
    page.get_by_test_id("info").filter(has_text="Walk and talk").wait_for()
    page.get_by_text("Walk and talk").first.wait_for()
    assert guest.overflow() == 0
