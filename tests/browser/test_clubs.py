"""Clubs in the browser: create, join by id, members, the club call — two members pressing
"start or join" end in one call, both adapters handed the registry's groupId — the last one out
clears the call, the club's chat thread, and what an owner and a member can do (invite, remove,
leave, end the call, delete, SMS invitations), each asked first. An outsider cannot join an
invite-only club. (Club invitations to accept or decline: test_club_invitations.py.)"""

from __future__ import annotations

import re
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
    # The new club opens at once.
    user.page.get_by_test_id("club-detail-name").filter(has_text=name).wait_for()
    clubs: list[dict[str, Any]] = user.api("GET", "/api/clubs")["items"]
    [club_id] = [str(c["clubId"]) for c in clubs if c["name"] == name]
    assert user.page.get_by_test_id("club-detail-id").inner_text() == club_id
    return club_id


def _join_by_id(user: User, club_id: str) -> None:
    _clubs(user)
    user.page.get_by_test_id("club-join-id").fill(club_id)
    user.page.get_by_test_id("club-join").click()


def _open(user: User, club_id: str) -> None:
    _clubs(user)
    user.page.get_by_test_id(f"club-open-{club_id}").click()
    user.page.locator(f"[data-testid=club-detail][data-club='{club_id}']").wait_for()


def _wait_calls(user: User, count: int) -> list[dict[str, Any]]:
    user.page.wait_for_function(f"window.switchboardAdapters.calls.length >= {count}")
    return user.recorded("calls")


def _end(user: User, index: int, remote: int, connected: bool = True) -> None:
    """The Calling SDK reports recorded call `index` over, with `remote` others still in it."""
    how = {"remoteParticipants": remote, "connected": connected}
    assert user.page.evaluate("([i, how]) => window.switchboardAdapters.end(i, how)", [index, how])


def test_two_members_starting_the_club_call_end_in_one_call(browser: Browser) -> None:
    alice = browser.user("wcc-alice", "Alice")
    bob = browser.user("wcc-bob", "Bob")
    club_id = _create(alice, "Book club")
    _join_by_id(bob, club_id)
    bob.page.get_by_test_id(f"club-{club_id}").wait_for()

    _open(alice, club_id)
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

    # Later arrivals see the call in the list, and since when, and join the same id.
    alice.page.get_by_test_id("stage-close").click()
    _clubs(alice)
    badge = alice.page.get_by_test_id(f"club-live-{club_id}")
    assert re.search(r"call in progress · started (just now|\d+ min ago)", badge.inner_text())
    alice.screenshot("clubs")
    alice.page.get_by_test_id(f"club-call-{club_id}").click()
    assert _wait_calls(alice, 2)[1]["locator"] == {"groupId": active}
    alice.page.get_by_test_id("stage-close").click()

    # The club's chat: the ChatComposite gets the thread the club answers to its members.
    thread_id = bob.api("GET", f"/api/clubs/{club_id}")["chatThreadId"]
    assert thread_id
    bob.page.get_by_test_id("stage-close").click()
    _open(bob, club_id)
    bob.page.get_by_test_id(f"club-chat-{club_id}").click()
    bob.page.get_by_test_id("stage-ready").wait_for()
    assert [c["threadId"] for c in bob.recorded("chats")] == [thread_id]


def test_the_last_one_out_clears_the_club_call(browser: Browser) -> None:
    """A call ends for Alice while Bob is still in it: the club keeps it. It ends for Bob, the
    last one in: his client clears it and nobody sees a call in progress any more. A call that
    never connected, registered by the one who leaves it, is cleared too."""
    alice = browser.user("wcl-alice", "Alice")
    bob = browser.user("wcl-bob", "Bob")
    club_id = _create(alice, "Last out")
    _join_by_id(bob, club_id)
    _clubs(alice)
    alice.page.get_by_test_id(f"club-call-{club_id}").click()
    _wait_calls(alice, 1)
    _clubs(bob)
    bob.page.get_by_test_id(f"club-call-{club_id}").click()
    _wait_calls(bob, 1)

    _end(alice, 0, remote=1)
    alice.page.get_by_test_id("stage-ended").wait_for()
    assert "You left the call." in alice.page.get_by_test_id("stage-ended").inner_text()
    alice.page.get_by_test_id("stage-close").click()
    assert alice.api("GET", f"/api/clubs/{club_id}/call").get("groupCallId")
    assert alice.log_count(rf"DELETE /api/clubs/{club_id}/call ") == 0

    _end(bob, 0, remote=0)
    assert bob.log_count(rf"DELETE /api/clubs/{club_id}/call 204 ", at_least=1) == 1
    assert bob.api("GET", f"/api/clubs/{club_id}/call")["code"] == "no_active_call"
    bob.page.get_by_test_id("stage-close").click()
    # Alice's list, loaded again, shows no call either.
    _clubs(alice)
    alice.page.get_by_test_id(f"club-call-{club_id}").filter(has_text="Start a call").wait_for()
    assert alice.page.get_by_test_id(f"club-live-{club_id}").count() == 0

    # Never connected: Bob registers a call, then leaves before anyone came.
    bob.page.get_by_test_id(f"club-call-{club_id}").click()
    _wait_calls(bob, 2)
    _end(bob, 1, remote=0, connected=False)
    bob.page.get_by_test_id("stage-ended").filter(has_text="No call took place").wait_for()
    assert bob.log_count(rf"DELETE /api/clubs/{club_id}/call 204 ", at_least=2) == 2


def test_owner_and_member_manage_the_club_each_asked_first(browser: Browser) -> None:
    owner = browser.user("wcm-owner", "Olive")
    member = browser.user("wcm-member", "Max")
    other = browser.user("wcm-other", "Ola")
    club_id = _create(owner, "Garden club")
    for user in (member, other):
        _join_by_id(user, club_id)
        user.page.get_by_test_id(f"club-{club_id}").wait_for()

    # An SMS invitation with the club's link; in dev mode the client points at the outbox.
    _open(owner, club_id)
    owner.page.get_by_test_id("sms-invite-to").fill("+14255550177")
    owner.page.get_by_test_id("sms-invite-send").click()
    owner.page.get_by_test_id("sms-invite-sent").wait_for()
    assert owner.page.get_by_test_id("outbox-link").get_attribute("href") == "/api/dev/outbox"
    [sms] = [m for m in owner.api("GET", "/api/dev/outbox")["items"] if m["to"] == "+14255550177"]
    assert f"?clubId={club_id}" in sms["message"]

    # Removing a member is asked first; "Cancel" keeps them.
    owner.page.get_by_test_id("member-remove-wcm-other").click()
    assert "Remove Ola from Garden club?" in owner.confirm(yes=False)
    assert owner.page.get_by_test_id("member-wcm-other").count() == 1
    owner.page.get_by_test_id("member-remove-wcm-other").click()
    owner.confirm()
    owner.page.get_by_test_id("member-wcm-other").wait_for(state="detached")
    assert other.api("GET", f"/api/clubs/{club_id}/call")["status"] in (403, 404)

    # The owner ends a running call for everyone (asked first).
    _open(member, club_id)
    member.page.get_by_test_id("club-detail-call").click()
    _wait_calls(member, 1)
    member.page.get_by_test_id("stage-close").click()
    _open(owner, club_id)
    owner.page.get_by_test_id("club-call-end").click()
    assert "End Garden club's call for everyone?" in owner.confirm()
    owner.page.get_by_test_id("club-call-end").wait_for(state="detached")
    assert owner.api("GET", f"/api/clubs/{club_id}/call")["code"] == "no_active_call"

    # The member leaves (asked first); the club is gone from their list.
    _open(member, club_id)
    member.page.get_by_test_id("club-leave").click()
    assert "Leave Garden club?" in member.confirm()
    member.page.get_by_test_id("club-detail").wait_for(state="detached")
    member.page.get_by_test_id(f"club-{club_id}").wait_for(state="detached")

    # The owner deletes the club (asked first).
    _open(owner, club_id)
    owner.page.get_by_test_id("club-delete").click()
    assert "Delete Garden club?" in owner.confirm()
    owner.page.get_by_test_id(f"club-{club_id}").wait_for(state="detached")
    assert owner.api("GET", f"/api/clubs/{club_id}")["status"] == 404


def test_an_outsider_cannot_join_an_invite_only_club(browser: Browser) -> None:
    owner = browser.user("wcc-owner", "Owner")
    club_id = _create(owner, "Secret club", "invite")
    outsider = browser.user("wcc-outsider", "Outsider")
    _join_by_id(outsider, club_id)
    assert "(404 " in outsider.page.get_by_test_id("error").inner_text()
    _clubs(outsider)
    assert outsider.page.get_by_test_id(f"club-{club_id}").count() == 0
    assert outsider.api("GET", f"/api/clubs/{club_id}/call")["status"] in (403, 404)
