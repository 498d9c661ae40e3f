"""Meetings today in the browser: an invitee sees the meeting scheduled for them and joins it with
the API's join link; any Teams meeting joins by link or by meeting id and passcode, each handed to
the call adapter as its locator. A user not invited sees nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import Browser, User

pytestmark = pytest.mark.browser


def _meetings(user: User) -> None:
    user.tab("profile")
    user.tab("meetings")
    user.page.get_by_test_id("meetings").wait_for()


def test_meetings_today_joined_by_the_apis_link_id_or_passcode(browser: Browser) -> None:
    alice = browser.user("wcm-alice", "Alice")
    bob = browser.user("wcm-bob", "Bob")
    carol = browser.user("wcm-carol", "Carol")
    now = datetime.now(UTC).replace(microsecond=0)
    meeting = alice.api(
        "POST",
        "/api/meetings",
        {
            "subject": "Standup",
            # Around now, so it is today wherever the browser thinks it is.
            "start": (now - timedelta(minutes=5)).isoformat(),
            "end": (now + timedelta(minutes=25)).isoformat(),
            "invitees": ["wcm-bob"],
        },
    )
    assert meeting.get("meetingId"), meeting

    _meetings(bob)
    row = bob.page.get_by_test_id(f"meeting-{meeting['meetingId']}")
    row.wait_for()
    assert "Standup" in row.inner_text()
    bob.screenshot("meetings")
    bob.page.get_by_test_id(f"meeting-join-{meeting['meetingId']}").click()
    bob.page.get_by_test_id("stage-ready").wait_for()
    [call] = bob.recorded("calls")
    assert call["locator"] == {"meetingLink": meeting["joinUrl"]}
    bob.page.get_by_test_id("stage-close").click()

    _meetings(carol)
    carol.page.get_by_text("Nothing today.").wait_for()
    assert carol.page.get_by_test_id(f"meeting-{meeting['meetingId']}").count() == 0

    # Any Teams meeting: by its link, or by meeting id (spaces as Teams prints them) + passcode.
    link = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_X%40thread.v2/0?context=%7b%7d"
    bob.page.get_by_test_id("meeting-link").fill(link)
    bob.page.get_by_test_id("meeting-link-join").click()
    bob.page.get_by_test_id("stage-ready").wait_for()
    bob.page.get_by_test_id("stage-close").click()
    bob.page.get_by_test_id("meeting-id").fill("123 456 789 012")
    bob.page.get_by_test_id("meeting-passcode").fill("Ab3dEf")
    bob.page.get_by_test_id("meeting-id-join").click()
    bob.page.get_by_test_id("stage-ready").wait_for()
    locators = [c["locator"] for c in bob.recorded("calls")]
    assert locators[1:] == [
        {"meetingLink": link},
        {"meetingId": "123456789012", "passcode": "Ab3dEf"},
    ]


def test_an_imported_meeting_joins_by_its_link_or_its_id_and_passcode(browser: Browser) -> None:
    """A meeting scheduled in Teams and imported by its /meet/<id>?p=<passcode> link."""
    dan = browser.user("wcm-dan", "Dan")
    now = datetime.now(UTC).replace(microsecond=0)
    meeting = dan.api(
        "POST",
        "/api/meetings/import",
        {
            "joinUrl": "https://teams.microsoft.com/meet/123456789012?p=Ab3dEf",
            "subject": "Planning",
            "start": (now - timedelta(minutes=5)).isoformat(),
            "end": (now + timedelta(minutes=25)).isoformat(),
            "invitees": [],
        },
    )
    assert meeting.get("joinMeetingId"), meeting
    _meetings(dan)
    dan.page.get_by_test_id(f"meeting-join-id-{meeting['meetingId']}").click()
    dan.page.get_by_test_id("stage-ready").wait_for()
    dan.page.get_by_test_id("stage-close").click()
    dan.page.get_by_test_id(f"meeting-join-{meeting['meetingId']}").click()
    dan.page.get_by_test_id("stage-ready").wait_for()
    assert [c["locator"] for c in dan.recorded("calls")] == [
        {"meetingId": meeting["joinMeetingId"], "passcode": meeting["passcode"]},
        {"meetingLink": meeting["joinUrl"]},
    ]


def _schedule(user: User, mode: str, subject: str, invitees: str = "", link: str = "") -> None:
    form = user.page.get_by_test_id(f"{mode}-form")
    if link:
        form.get_by_test_id(f"{mode}-link").fill(link)
    form.get_by_test_id(f"{mode}-subject").fill(subject)
    form.get_by_test_id(f"{mode}-invitees").fill(invitees)
    form.get_by_test_id(f"{mode}-submit").click()
    user.page.get_by_test_id("info").filter(has_text=subject).wait_for()


def test_schedule_import_and_cancel_in_the_browser(browser: Browser) -> None:
    """Scheduled through the form (tomorrow, the agenda follows to that day), imported by both
    Teams link forms, an SMS invitation with the meeting's link, and cancelled by its
    organizer after a confirmation; the invitee's agenda follows, an outsider's never shows it."""
    olga = browser.user("wcs-olga", "Olga")
    pete = browser.user("wcs-pete", "Pete")
    _meetings(olga)
    tomorrow = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    olga.page.get_by_test_id("schedule-date").fill(tomorrow)
    olga.page.get_by_test_id("schedule-start").fill("10:00")
    _schedule(olga, "schedule", "Retro", invitees="wcs-pete")
    assert olga.page.get_by_test_id("meetings-date").input_value() == tomorrow
    [retro] = olga.api("GET", f"/api/meetings?date={tomorrow}&tz=UTC")["items"]
    assert retro["subject"] == "Retro"
    assert retro["invitees"] == ["wcs-pete"]
    row = olga.page.get_by_test_id(f"meeting-{retro['meetingId']}")
    assert "10:00" in row.inner_text()

    # Imported by its /meet/<id>?p=<passcode> link and by its classic meetup-join link.
    short = "https://teams.microsoft.com/meet/987654321098?p=Zy9xWv"
    _schedule(olga, "import", "Imported short", link=short)
    classic = (
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_QUJD%40thread.v2/0"
        "?context=%7b%22Tid%22%3a%22t%22%2c%22Oid%22%3a%22o%22%7d"
    )
    _schedule(olga, "import", "Imported classic", link=classic)
    day = olga.page.get_by_test_id("meetings-date").input_value()
    items = olga.api("GET", f"/api/meetings?date={day}&tz=UTC")["items"]
    by_subject = {m["subject"]: m for m in items}
    assert by_subject["Imported short"]["joinMeetingId"] == "987654321098"
    assert by_subject["Imported classic"]["threadId"]

    # An SMS invitation with the meeting's link (dev mode: the outbox).
    olga.page.get_by_test_id("meetings-date").fill(tomorrow)
    olga.page.get_by_test_id(f"meeting-sms-{retro['meetingId']}").click()
    olga.page.get_by_test_id("sms-invite-to").fill("+14255550188")
    olga.page.get_by_test_id("sms-invite-send").click()
    olga.page.get_by_test_id("sms-invite-sent").wait_for()
    outbox = olga.api("GET", "/api/dev/outbox")["items"]
    assert any(
        f"?meetingId={retro['meetingId']}" in m["message"]
        for m in outbox
        if m["to"] == "+14255550188"
    )

    # The invitee has it; only the organizer may cancel it, after saying yes.
    _meetings(pete)
    pete.page.get_by_test_id("meetings-date").fill(tomorrow)
    pete.page.get_by_test_id(f"meeting-{retro['meetingId']}").wait_for()
    assert pete.page.get_by_test_id(f"meeting-cancel-{retro['meetingId']}").count() == 0
    olga.page.get_by_test_id(f"meeting-cancel-{retro['meetingId']}").click()
    assert 'Cancel "Retro"?' in olga.confirm(yes=False)
    assert olga.api("GET", f"/api/meetings/{retro['meetingId']}")["meetingId"]
    olga.page.get_by_test_id(f"meeting-cancel-{retro['meetingId']}").click()
    olga.confirm()
    olga.page.get_by_test_id(f"meeting-{retro['meetingId']}").wait_for(state="detached")
    assert olga.api("GET", f"/api/meetings/{retro['meetingId']}")["status"] == 404
    pete.page.evaluate("window.dispatchEvent(new Event('focus'))")
    pete.page.get_by_test_id(f"meeting-{retro['meetingId']}").wait_for(state="detached")
