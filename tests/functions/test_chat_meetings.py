"""Meeting chats through the meetings routes: listed for the organizer and invitees (with the
Teams chat's threadId when known), never for an outsider, gone when the meeting is cancelled."""

from __future__ import annotations

from switchboard.adapters.graph_local import LocalMeetingProvider
from tests.conftest import Client

CLASSIC = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjY0ZTBiYjct%40thread.v2/0"
    "?context=%7b%22Tid%22%3a%2272f988bf%22%7d"
)
BODY = {"subject": "Design review", "start": "2026-11-23T15:00:00Z", "end": "2026-11-23T16:00:00Z"}


async def threads(client: Client, user: str) -> list[dict[str, object]]:
    resp = await client.request("GET", "/api/threads", headers=client.login(user))
    assert resp.status == 200
    items: list[dict[str, object]] = resp.json()["items"]
    return items


async def test_meeting_chats_are_listed_for_organizer_and_invitees_only(client: Client) -> None:
    assert isinstance(client.runtime.adapters.meeting_provider, LocalMeetingProvider)
    for user in ("alice", "bob", "carol"):
        await client.request("GET", "/api/me", headers=client.login(user))
    created = await client.request(
        "POST",
        "/api/meetings",
        headers=client.login("alice"),
        json_body={**BODY, "invitees": ["bob"]},
    )
    assert created.status == 201, created.body
    meeting = created.json()
    await client.runtime.reactor.drain()  # the meeting's reconciler lists its chat

    for user in ("alice", "bob"):
        assert await threads(client, user) == [
            {
                "threadId": meeting["threadId"],
                "kind": "meeting",
                "topic": "Design review",
                "clubId": None,
                "meetingId": meeting["meetingId"],
                "userId": None,
            }
        ]
    assert await threads(client, "carol") == []

    imported = await client.request(
        "POST",
        "/api/meetings/import",
        headers=client.login("bob"),
        json_body={**BODY, "subject": "Imported", "joinUrl": CLASSIC, "invitees": []},
    )
    assert imported.status == 201, imported.body
    await client.runtime.reactor.drain()
    newest = (await threads(client, "bob"))[0]
    assert newest["meetingId"] == imported.json()["meetingId"]
    assert newest["threadId"] == imported.json()["threadId"]

    cancelled = await client.request(
        "DELETE", f"/api/meetings/{meeting['meetingId']}", headers=client.login("alice")
    )
    assert cancelled.status == 204
    await client.runtime.reactor.drain()
    assert await threads(client, "alice") == []
    assert [t["topic"] for t in await threads(client, "bob")] == ["Imported"]
