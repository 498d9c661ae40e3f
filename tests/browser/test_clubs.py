"""Clubs in the browser: create, join by id, members, the club call — two members pressing
"start or join" end in one call, both adapters handed the registry's groupId — and the club's
chat thread. An outsider cannot join an invite-only club."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Browser, User

pytestmark = pytest.mark.browser


def _clubs(user: User) -> None:
    """Open (or reload) the clubs tab."""
    user.tab("profile")
    user.tab("clubs")
    user.page.get_by_test_id("clubs").wait_for()


def _create(user: User, name: str, visibility: str = "open") -> str:
    _clubs(user)
    user.page.get_by_test_id("club-name").fill(name)
    user.page.get_by_test_id("club-visibility").select_option(visibility)
    user.page.get_by_test_id("club-create").click()
    user.page.get_by_text(name, exact=True).wait_for()
    clubs: list[dict[str, Any]] = user.api("GET", "/api/clubs")["items"]
    [club_id] = [str(c["clubId"]) for c in clubs if c["name"] == name]
    return club_id


def _join_by_id(user: User, club_id: str) -> None:
    _clubs(user)
    user.page.get_by_test_id("club-join-id").fill(club_id)
    user.page.get_by_test_id("club-join").click()


def _wait_calls(user: User, count: int) -> list[dict[str, Any]]:
    user.page.wait_for_function(f"window.switchboardAdapters.calls.length >= {count}")
    return user.recorded("calls")


def test_two_members_starting_the_club_call_end_in_one_call(browser: Browser) -> None:
    alice = browser.user("wcc-alice", "Alice")
    bob = browser.user("wcc-bob", "Bob")
    club_id = _create(alice, "Book club")
    _join_by_id(bob, club_id)
    bob.page.get_by_test_id(f"club-{club_id}").wait_for()

    alice.page.get_by_test_id(f"club-members-{club_id}").click()
    alice.page.get_by_test_id("member-wcc-bob").wait_for()
    alice.page.get_by_test_id("member-wcc-alice").wait_for()

    # Both press at once: each proposes its own new id; the registry keeps one and answers the
    # other 409 with it.
    alice.page.get_by_test_id(f"club-call-{club_id}").click(no_wait_after=True)
    bob.page.get_by_test_id(f"club-call-{club_id}").click(no_wait_after=True)
    [alice_call] = _wait_calls(alice, 1)
    [bob_call] = _wait_calls(bob, 1)
    active = alice.api("GET", f"/api/clubs/{club_id}/call")["groupCallId"]
    assert alice_call["locator"] == {"groupId": active}
    assert bob_call["locator"] == {"groupId": active}
    assert alice_call["targetCallees"] is None
    # Neither knew of a call when it pressed: one registration won (201), the other was
    # answered 409 with the winner's id, which is the one it joined.
    registrations = rf"PUT /api/clubs/{club_id}/call (201|409) "
    assert alice.log_count(registrations, at_least=2) == 2
    assert alice.log_count(rf"PUT /api/clubs/{club_id}/call 409 ") == 1

    # Later arrivals see the call in the list and join the same id.
    alice.page.get_by_test_id("stage-close").click()
    _clubs(alice)
    alice.page.get_by_text("call in progress").wait_for()
    alice.screenshot("clubs")
    alice.page.get_by_test_id(f"club-call-{club_id}").click()
    assert _wait_calls(alice, 2)[1]["locator"] == {"groupId": active}
    alice.page.get_by_test_id("stage-close").click()

    # The club's chat: the ChatComposite gets the thread the club answers to its members.
    thread_id = bob.api("GET", f"/api/clubs/{club_id}")["chatThreadId"]
    assert thread_id
    bob.page.get_by_test_id("stage-close").click()
    _clubs(bob)
    bob.page.get_by_test_id(f"club-chat-{club_id}").click()
    bob.page.get_by_test_id("stage-ready").wait_for()
    assert [c["threadId"] for c in bob.recorded("chats")] == [thread_id]


def test_an_outsider_cannot_join_an_invite_only_club(browser: Browser) -> None:
    owner = browser.user("wcc-owner", "Owner")
    club_id = _create(owner, "Secret club", "invite")
    outsider = browser.user("wcc-outsider", "Outsider")
    _join_by_id(outsider, club_id)
    assert "(404 " in outsider.page.get_by_test_id("error").inner_text()
    _clubs(outsider)
    assert outsider.page.get_by_test_id(f"club-{club_id}").count() == 0
    assert outsider.api("GET", f"/api/clubs/{club_id}/call")["status"] in (403, 404)
