"""Friends in the browser: a request sent and accepted, an invite code made and redeemed, and
calls to a friend handed to the call adapter as call-info gave them: the friend's
communicationUserId, or their verified number dialled from the app's caller id. A third user
sees none of it."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import APP_CALLER_ID, Browser, User

pytestmark = pytest.mark.browser


def _friends(user: User) -> None:
    """Open (or reload) the friends tab."""
    user.tab("profile")
    user.tab("friends")
    user.page.get_by_test_id("friends").wait_for()


def _acs_id(user: User) -> str:
    user.tab("profile")
    text: str = user.page.get_by_test_id("profile-acs").inner_text()
    return text


def _verify_phone(user: User, number: str) -> None:
    """The profile's phone form: a code by SMS (read from the dev outbox), then verify."""
    user.tab("profile")
    user.page.get_by_test_id("phone-number").fill(number)
    user.page.get_by_test_id("phone-submit").click()
    user.page.get_by_test_id("phone-code").wait_for()
    outbox = user.api("GET", "/api/dev/outbox")["items"]
    [text] = [m["message"] for m in outbox if m["to"] == number]
    code = re.search(r"\b(\d{6})\b", text)
    assert code, text
    user.page.get_by_test_id("phone-code").fill(code.group(1))
    user.page.get_by_test_id("phone-submit").click()
    user.page.get_by_test_id("profile-phone-verified").wait_for()
    assert user.page.get_by_test_id("profile-phone").inner_text() == number


def test_request_accept_and_call_a_friend(browser: Browser) -> None:
    alice = browser.user("wcf-alice", "Alice")
    bob = browser.user("wcf-bob", "Bob")
    bob_acs = _acs_id(bob)

    _friends(alice)
    alice.page.get_by_test_id("friend-request-user").fill("wcf-bob")
    alice.page.get_by_test_id("friend-request-send").click()
    alice.page.get_by_test_id("outgoing-wcf-bob").wait_for()

    _friends(bob)
    bob.page.get_by_test_id("incoming-wcf-alice").wait_for()
    bob.page.get_by_test_id("accept-wcf-alice").click()
    bob.page.get_by_test_id("friend-wcf-alice").wait_for()
    assert bob.page.get_by_test_id("incoming-wcf-alice").count() == 0

    _friends(alice)
    alice.page.get_by_test_id("friend-wcf-bob").wait_for()
    alice.screenshot("friends")
    alice.page.get_by_test_id("call-wcf-bob").click()
    alice.page.get_by_test_id("stage-ready").wait_for()
    assert alice.page.get_by_test_id("stage-title").inner_text() == "Calling Bob"
    [call] = alice.recorded("calls")
    assert call["targetCallees"] == [{"communicationUserId": bob_acs}]
    assert call["locator"] is None
    assert call["alternateCallerId"] is None
    assert call["userId"] == {
        "communicationUserId": alice.api("GET", "/api/me")["communicationUserId"]
    }
    assert call["hasToken"]
    alice.page.get_by_test_id("stage-close").click()

    # Bob has no verified number yet: the client says so and opens no call.
    alice.page.get_by_test_id("call-phone-wcf-bob").click()
    assert "no verified phone number" in alice.page.get_by_test_id("error").inner_text()
    assert len(alice.recorded("calls")) == 1

    # Once he has verified one, "Call phone" dials it from the app's number (call-info's pstn).
    _verify_phone(bob, "+14255550123")
    alice.page.get_by_test_id("call-phone-wcf-bob").click()
    alice.page.get_by_test_id("stage-ready").wait_for()
    phone_call = alice.recorded("calls")[1]
    assert phone_call["targetCallees"] == [{"phoneNumber": "+14255550123"}]
    assert phone_call["alternateCallerId"] == APP_CALLER_ID
    alice.page.get_by_test_id("stage-close").click()

    # A third user sees neither of them, and cannot ask for Bob's call-info.
    carol = browser.user("wcf-carol", "Carol")
    _friends(carol)
    assert carol.page.get_by_test_id("friend-wcf-bob").count() == 0
    assert carol.page.get_by_test_id("incoming-wcf-alice").count() == 0


def test_invite_code_made_and_redeemed(browser: Browser) -> None:
    dora = browser.user("wcf-dora", "Dora")
    ed = browser.user("wcf-ed", "Ed")
    _friends(dora)
    dora.page.get_by_test_id("invite-make").click()
    code = dora.page.get_by_test_id("invite-code").inner_text()
    assert len(code) >= 8

    _friends(ed)
    ed.page.get_by_test_id("invite-redeem-code").fill(code)
    ed.page.get_by_test_id("invite-redeem").click()
    ed.page.get_by_test_id("friend-wcf-dora").wait_for()
    _friends(dora)
    dora.page.get_by_test_id("friend-wcf-ed").wait_for()

    # The code was one-time: someone else redeeming it gets the API's 404, shown as an error,
    # and its owner the 400 for their own code.
    fay = browser.user("wcf-fay", "Fay")
    _friends(fay)
    fay.page.get_by_test_id("invite-redeem-code").fill(code)
    fay.page.get_by_test_id("invite-redeem").click()
    assert "(404 " in fay.page.get_by_test_id("error").inner_text()
    assert fay.page.get_by_test_id("friend-wcf-dora").count() == 0
    dora.page.get_by_test_id("invite-redeem-code").fill(code)
    dora.page.get_by_test_id("invite-redeem").click()
    assert "(400 " in dora.page.get_by_test_id("error").inner_text()
