"""docs/meetings.md's walkthrough over real HTTP against the devserver (local provider):
schedule, the invitee's day, an import, an outsider who sees nothing, and a restart that keeps
the meetings."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import DevServerProcess


def test_meetings_walkthrough_survives_restart(fresh_devserver: DevServerProcess) -> None:
    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice", "Alice")
    bob = fresh_devserver.login("bob", "Bob")
    carol = fresh_devserver.login("carol", "Carol")
    for who in (alice, bob, carol):
        assert httpx.get(f"{base}/api/me", headers=who).status_code == 200

    created = httpx.post(
        f"{base}/api/meetings",
        headers=alice,
        json={
            "subject": "Design review",
            "start": "2026-11-24T09:30:00+01:00",
            "end": "2026-11-24T10:00:00+01:00",
            "invitees": ["bob"],
        },
    )
    assert created.status_code == 201, created.text
    meeting = created.json()
    assert meeting["provider"] == "local"
    assert meeting["joinUrl"].startswith("https://local.invalid/meetings/")

    imported = httpx.post(
        f"{base}/api/meetings/import",
        headers=bob,
        json={
            "joinUrl": "https://teams.microsoft.com/meet/2345678901234?p=AbC123xY",
            "subject": "Weekly sync",
            "start": "2026-11-24T15:00:00+01:00",
            "end": "2026-11-24T15:30:00+01:00",
            "invitees": ["alice"],
        },
    )
    assert imported.status_code == 201, imported.text

    day = {"date": "2026-11-24", "tz": "Europe/Paris"}
    fresh_devserver.restart()
    listed = httpx.get(f"{base}/api/meetings", headers=bob, params=day).json()["items"]
    assert [m["subject"] for m in listed] == ["Design review", "Weekly sync"]
    assert listed[0] == meeting
    path = f"{base}/api/meetings/{meeting['meetingId']}"
    assert httpx.get(path, headers=carol).status_code == 404
    assert httpx.get(f"{base}/api/meetings", headers=carol, params=day).json() == {"items": []}
    assert httpx.delete(path, headers=bob).status_code == 403
    assert httpx.delete(path, headers=alice).status_code == 204
    assert httpx.get(path, headers=bob).status_code == 404
    bad = httpx.get(f"{base}/api/meetings", headers=bob, params={"tz": "Nowhere/Land"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
