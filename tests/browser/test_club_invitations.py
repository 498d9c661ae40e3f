"""Club invitations and rooms-mode club calls in the browser, against the contract's turn 3
(docs/club-invitations.md): the owner invites (`PUT …/members/{userId}` answers
`status: "invited"`), the invitee finds the invitation (`GET /api/me/club-invitations`) and
accepts (`POST …/join`) or declines (`DELETE …/members/{own id}`), the owner sees invitees
marked "invited"; with `CLUB_CALLS=rooms` the club call is an ACS room and both members' call
adapters get `{roomId}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Browser, User
from tests.e2e.conftest import DevServerProcess

pytestmark = pytest.mark.browser


def _clubs(user: User) -> None:
    user.tab("profile")
    user.tab("clubs")
    user.page.get_by_test_id("clubs").wait_for()


def _create(user: User, name: str, visibility: str) -> str:
    _clubs(user)
    user.page.get_by_test_id("club-name").fill(name)
    user.page.get_by_test_id("club-visibility").select_option(visibility)
    user.page.get_by_test_id("club-create").click()
    user.page.get_by_test_id("club-detail-name").filter(has_text=name).wait_for()
    club_id: str = user.page.get_by_test_id("club-detail-id").inner_text()
    return club_id


def _invite(owner: User, user_id: str) -> None:
    owner.page.get_by_test_id("member-invite-user").fill(user_id)
    owner.page.get_by_test_id("member-invite").click()
    owner.page.get_by_test_id("info").filter(has_text=f"{user_id} is invited").wait_for()


def test_an_invite_only_club_gets_members_who_said_yes(browser: Browser) -> None:
    owner = browser.user("wci-owner", "Owner")
    bob = browser.user("wci-bob", "Bob")
    carol = browser.user("wci-carol", "Carol")
    club_id = _create(owner, "Invite only", "invite")

    _invite(owner, "wci-bob")
    _invite(owner, "wci-carol")
    # The owner sees the invitees, marked as such, not yet members.
    invited = owner.page.get_by_test_id("member-wci-bob")
    invited.wait_for()
    assert "invited" in invited.inner_text()
    assert owner.api("GET", f"/api/clubs/{club_id}")["memberCount"] == 1

    # Bob finds the invitation and accepts: the club opens, he is a member.
    _clubs(bob)
    bob.page.get_by_test_id(f"invitation-{club_id}").wait_for()
    bob.screenshot("club-invitation")
    bob.page.get_by_test_id(f"invitation-accept-{club_id}").click()
    bob.page.get_by_test_id(f"club-{club_id}").wait_for()
    bob.page.get_by_test_id(f"invitation-{club_id}").wait_for(state="detached")
    assert bob.api("GET", f"/api/clubs/{club_id}")["role"] == "member"

    # Carol declines: no membership, no invitation left, and the owner's list drops her.
    _clubs(carol)
    carol.page.get_by_test_id(f"invitation-decline-{club_id}").click()
    carol.page.get_by_test_id(f"invitation-{club_id}").wait_for(state="detached")
    assert carol.page.get_by_test_id(f"club-{club_id}").count() == 0
    assert carol.api("GET", "/api/me/club-invitations")["items"] == []

    owner.page.evaluate("window.dispatchEvent(new Event('focus'))")
    owner.page.get_by_test_id("member-wci-carol").wait_for(state="detached")
    member = owner.page.get_by_test_id("member-wci-bob")
    assert "invited" not in member.inner_text()
    assert owner.api("GET", f"/api/clubs/{club_id}")["memberCount"] == 2


def test_a_club_link_offers_an_invitee_to_accept(browser: Browser) -> None:
    owner = browser.user("wcj-owner", "Owner")
    browser.user("wcj-dan", "Dan")  # a user the owner can invite
    club: dict[str, Any] = owner.api(
        "POST", "/api/clubs", {"name": "Linked", "visibility": "invite"}
    )
    assert owner.api("PUT", f"/api/clubs/{club['clubId']}/members/wcj-dan")["status"] == "invited"
    dan = browser.user("wcj-dan", "Dan", path=f"/?clubId={club['clubId']}")
    dan.page.get_by_test_id("club-detail-join").filter(has_text="Accept the invitation").click()
    dan.page.get_by_test_id(f"club-{club['clubId']}").wait_for()


@pytest.fixture(scope="module")
def rooms_server(
    web_build: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServerProcess]:
    server = DevServerProcess(tmp_path_factory.mktemp("rooms") / "data", CLUB_CALLS="rooms")
    server.start()
    yield server
    server.stop()


def test_rooms_mode_club_calls_join_the_same_room(
    chromium: Any, rooms_server: DevServerProcess
) -> None:
    browser = Browser(chromium, rooms_server)
    try:
        alice = browser.user("wcr-alice", "Alice")
        bob = browser.user("wcr-bob", "Bob")
        club = alice.api("POST", "/api/clubs", {"name": "Rooms", "visibility": "open"})
        club_id = club["clubId"]
        bob.api("POST", f"/api/clubs/{club_id}/join")
        for user in (alice, bob):
            _clubs(user)
            user.page.get_by_test_id(f"club-call-{club_id}").click()
            user.page.wait_for_function("window.switchboardAdapters.calls.length >= 1")
        room_id = alice.api("GET", f"/api/clubs/{club_id}/call")["roomId"]
        assert room_id
        assert alice.recorded("calls")[0]["locator"] == {"roomId": room_id}
        assert bob.recorded("calls")[0]["locator"] == {"roomId": room_id}
    finally:
        assert browser.close_users() == []
