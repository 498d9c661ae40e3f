"""Meetings routes through their registered handlers: an organizer, an invitee and an outsider on
every route, bad input that changes nothing, the agenda's day and time zone, Teams links in both
forms, Azure without Graph, erase, and a store failure that leaves no half meeting."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.adapters.graph_local import LocalMeetingProvider
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.runtime import Runtime, set_runtime
from tests.conftest import Client, make_runtime, seed_keys
from tests.fakes import store_down
from tests.proxies import spy, spy_of

START = "2026-11-23T15:00:00+01:00"
END = "2026-11-23T16:00:00+01:00"
CLASSIC = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjY0ZTBiYjct%40thread.v2/0"
    "?context=%7b%22Tid%22%3a%2272f988bf%22%7d"
)
SHORT = "https://teams.microsoft.com/meet/2345678901234?p=AbC123xY"


@pytest.fixture
async def meetings_client(tmp_path: Path) -> AsyncIterator[Client]:
    """The embedded adapters, the store and the local provider spied on."""
    seed_keys(tmp_path)
    rt = make_runtime(
        tmp_path,
        store=spy(SqliteStore(tmp_path / "switchboard.sqlite")),
        meeting_provider=spy(LocalMeetingProvider(tmp_path)),
    )
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


async def users(client: Client, *names: str) -> list[dict[str, str]]:
    """Signed-in users whose profiles exist (a user exists from their first request)."""
    headers = []
    for name in names:
        h = client.login(name, name.title())
        assert (await client.request("GET", "/api/me", headers=h)).status == 200
        headers.append(h)
    return headers


def meeting_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": "Design review", "start": START, "end": END}
    body.update(overrides)
    return body


def local_provider(client: Client) -> LocalMeetingProvider:
    provider = spy_of(client.runtime.adapters.meeting_provider).inner
    assert isinstance(provider, LocalMeetingProvider)
    return provider


PROTECTED = [
    ("POST", "/api/meetings"),
    ("POST", "/api/meetings/import"),
    ("GET", "/api/meetings"),
    ("GET", "/api/meetings/m1"),
    ("DELETE", "/api/meetings/m1"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_meeting_route_needs_a_valid_token(
    meetings_client: Client, method: str, path: str
) -> None:
    resp = await meetings_client.request(
        method, path, headers={"Authorization": "Bearer nope"}, json_body=meeting_body()
    )
    assert resp.status == 401
    assert spy_of(meetings_client.runtime.adapters.store).calls == {}


async def test_organizer_invitee_and_outsider(meetings_client: Client) -> None:
    client = meetings_client
    alice, bob, carol = await users(client, "alice", "bob", "carol")
    created = await client.request(
        "POST", "/api/meetings", headers=alice, json_body=meeting_body(invitees=["bob", "bob"])
    )
    assert created.status == 201, created.body
    meeting = created.json()
    assert set(meeting) == {
        "meetingId", "subject", "start", "end", "joinUrl", "threadId", "joinMeetingId",
        "passcode", "organizerId", "invitees", "provider",
    }  # fmt: skip
    assert meeting["provider"] == "local"
    assert meeting["joinUrl"].startswith("https://local.invalid/meetings/")
    assert meeting["threadId"] is None
    assert meeting["joinMeetingId"] is None
    assert meeting["organizerId"] == "alice"
    assert meeting["invitees"] == ["bob"]
    assert meeting["start"] == "2026-11-23T14:00:00Z"
    path = f"/api/meetings/{meeting['meetingId']}"

    for who in (alice, bob):
        seen = await client.request("GET", path, headers=who)
        assert seen.status == 200
        assert seen.json() == meeting
        day = await client.request(
            "GET", "/api/meetings", headers=who, params={"date": "2026-11-23"}
        )
        assert day.json() == {"items": [meeting]}
    hidden = await client.request("GET", path, headers=carol)
    assert hidden.status == 404
    assert hidden.json()["code"] == "not_found"
    empty = await client.request(
        "GET", "/api/meetings", headers=carol, params={"date": "2026-11-23"}
    )
    assert empty.json() == {"items": []}

    # Only the organizer cancels; the invitee is told no, the outsider sees nothing.
    assert (await client.request("DELETE", path, headers=bob)).status == 403
    assert (await client.request("DELETE", path, headers=carol)).status == 404
    assert (await client.request("GET", path, headers=bob)).status == 200
    assert (await client.request("DELETE", path, headers=alice)).status == 204
    for who in (alice, bob):
        assert (await client.request("GET", path, headers=who)).status == 404
        day = await client.request(
            "GET", "/api/meetings", headers=who, params={"date": "2026-11-23"}
        )
        assert day.json() == {"items": []}
    provider_id = meeting["joinUrl"].rsplit("/", 1)[1]
    assert not local_provider(client).exists(provider_id)
    assert (await client.request("DELETE", path, headers=alice)).status == 404


async def test_operations_per_create_and_per_agenda_read(meetings_client: Client) -> None:
    client = meetings_client
    alice, _, _ = await users(client, "alice", "bob", "carol")
    store = spy_of(client.runtime.adapters.store)
    provider = spy_of(client.runtime.adapters.meeting_provider)
    store.calls.clear()
    created = await client.request(
        "POST", "/api/meetings", headers=alice, json_body=meeting_body(invitees=["bob", "carol"])
    )
    assert created.status == 201
    # 3 agenda entries, and chat lists the meeting's chat for the same 3 (organizer, invitees)
    assert store.calls == {"read_many": 1, "create": 1, "upsert": 6}
    assert provider.calls == {"create_meeting": 1}
    store.calls.clear()
    day = await client.request("GET", "/api/meetings", headers=alice, params={"date": "2026-11-23"})
    assert len(day.json()["items"]) == 1
    assert store.calls == {"query": 1}


async def test_agenda_day_follows_the_time_zone(meetings_client: Client) -> None:
    client = meetings_client
    (alice,) = await users(client, "alice")
    late = meeting_body(start="2026-11-23T23:30:00Z", end="2026-11-23T23:45:00Z", subject="Late")
    early = meeting_body(start="2026-11-23T08:00:00Z", end="2026-11-23T09:00:00Z", subject="Early")
    for body in (late, early):
        assert (
            await client.request("POST", "/api/meetings", headers=alice, json_body=body)
        ).status == 201

    async def day(date: str, tz: str | None = None) -> list[str]:
        params = {"date": date} | ({"tz": tz} if tz else {})
        resp = await client.request("GET", "/api/meetings", headers=alice, params=params)
        assert resp.status == 200, resp.body
        return [m["subject"] for m in resp.json()["items"]]

    assert await day("2026-11-23") == ["Early", "Late"]  # UTC by default, ordered by start
    assert await day("2026-11-23", "Europe/Paris") == ["Early"]
    assert await day("2026-11-24", "Europe/Paris") == ["Late"]
    assert await day("2026-11-23", "America/Los_Angeles") == ["Early", "Late"]
    assert await day("2026-11-22") == []


@pytest.mark.parametrize(
    "params",
    [
        {"date": "2026-02-30"},
        {"date": "23/11/2026"},
        {"date": "2026-11-23", "tz": "Mars/Olympus"},
        {"date": "2026-11-23", "tz": "../../etc/passwd"},
        {"date": "2026-11-23", "tz": "Europe/"},
        {"unknown": "1"},
        # Days at the calendar's ends: their bounds in UTC fall outside what datetime holds.
        {"date": "9999-12-31"},
        {"date": "0001-01-01"},
        {"date": "0001-01-01", "tz": "Asia/Tokyo"},
        {"date": "9999-12-31", "tz": "America/New_York"},
    ],
)
async def test_bad_day_or_time_zone_is_400(meetings_client: Client, params: dict[str, str]) -> None:
    (alice,) = await users(meetings_client, "alice")
    resp = await meetings_client.request("GET", "/api/meetings", headers=alice, params=params)
    assert resp.status == 400
    assert resp.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (meeting_body(end="2026-11-23T14:59:00+01:00"), "end"),
        (meeting_body(end=START), "end"),
        (meeting_body(end="2026-11-24T15:00:01+01:00"), "end"),
        (meeting_body(start="2026-11-23T15:00:00"), "start"),
        # In UTC these fall outside what datetime holds (year 0 and year 10000).
        (meeting_body(start="0001-01-01T00:00:00+05:00", end="0001-01-01T01:00:00+05:00"), "start"),
        (meeting_body(start="9999-12-31T22:00:00-05:00", end="9999-12-31T23:00:00-05:00"), "start"),
        (meeting_body(subject=""), "subject"),
        (meeting_body(subject="a\nb"), "subject"),
        (meeting_body(invitees=["bob/../x"]), "invitees.0"),
        (meeting_body(invitees=[f"u{i}" for i in range(101)]), "invitees"),
        (meeting_body(invitees=["bob", "nobody", "ghost"]), "invitees"),
        (meeting_body(extra=1), "extra"),
    ],
)
async def test_bad_meetings_are_400_and_store_nothing(
    meetings_client: Client, body: dict[str, Any], field: str
) -> None:
    client = meetings_client
    alice, _ = await users(client, "alice", "bob")
    spy_of(client.runtime.adapters.store).calls.clear()
    resp = await client.request("POST", "/api/meetings", headers=alice, json_body=body)
    assert resp.status == 400, resp.body
    assert resp.json()["field"] == field
    if field == "invitees" and "nobody" in body["invitees"]:
        assert resp.json()["code"] == "unknown_users"
        assert "nobody, ghost" in resp.json()["detail"]
    calls = spy_of(client.runtime.adapters.store).calls
    assert calls["create"] == calls["upsert"] == 0
    assert spy_of(client.runtime.adapters.meeting_provider).calls == {}


async def test_invitees_need_not_be_friends_and_the_organizer_is_not_invited(
    meetings_client: Client,
) -> None:
    alice, _ = await users(meetings_client, "alice", "bob")
    resp = await meetings_client.request(
        "POST", "/api/meetings", headers=alice, json_body=meeting_body(invitees=["alice", "bob"])
    )
    assert resp.status == 201
    assert resp.json()["invitees"] == ["bob"]


async def test_import_both_teams_link_forms(meetings_client: Client) -> None:
    client = meetings_client
    alice, bob, carol = await users(client, "alice", "bob", "carol")
    classic = await client.request(
        "POST",
        "/api/meetings/import",
        headers=alice,
        json_body=meeting_body(joinUrl=CLASSIC, invitees=["bob"]),
    )
    assert classic.status == 201, classic.body
    assert classic.json()["threadId"] == "19:meeting_NjY0ZTBiYjct@thread.v2"
    assert classic.json()["joinUrl"] == CLASSIC
    assert classic.json()["provider"] == "import"
    assert classic.json()["joinMeetingId"] is None

    short = await client.request(
        "POST", "/api/meetings/import", headers=bob, json_body=meeting_body(joinUrl=SHORT)
    )
    assert short.status == 201, short.body
    assert short.json()["joinMeetingId"] == "2345678901234"
    assert short.json()["passcode"] == "AbC123xY"
    assert short.json()["threadId"] is None  # the local provider knows no Teams meeting ID

    day = await client.request("GET", "/api/meetings", headers=bob, params={"date": "2026-11-23"})
    assert [m["provider"] for m in day.json()["items"]] == ["import", "import"]
    path = f"/api/meetings/{classic.json()['meetingId']}"
    assert (await client.request("GET", path, headers=carol)).status == 404
    assert (await client.request("DELETE", path, headers=bob)).status == 403
    assert (await client.request("DELETE", path, headers=alice)).status == 204
    # An imported meeting belongs to its organizer in Teams: only our records go.
    assert spy_of(client.runtime.adapters.meeting_provider).calls["delete_meeting"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://teams.microsoft.com/meet/2345678901234?p=AbC123xY",
        "https://teams.microsoft.com.evil.example/meet/2345678901234?p=x",
        "https://evil.example/l/meetup-join/19%3ameeting_x%40thread.v2/0",
        "https://teams.microsoft.com:8443/meet/2345678901234?p=x",
        "https://user@teams.microsoft.com/meet/2345678901234?p=x",
        "https://teams.microsoft.com/l/chat/19%3ameeting_x%40thread.v2/0",
        "https://teams.microsoft.com/l/meetup-join/not-a-thread/0",
        "https://teams.microsoft.com/meet/abc?p=x",
        "https://teams.microsoft.com/meet/2345678901234?p=<script>",
        "javascript:alert(1)//https://teams.microsoft.com/meet/1",
        "https://teams.microsoft.com/meet/2345678901234?p=a b",
        "teams.microsoft.com/meet/2345678901234",
        # What lenient or naive link parsers read differently: never part of a Teams link.
        "https://teams.microsoft.com\\@evil.example/meet/2345678901234",
        "https://teams.microsoft.com/meet/2345678901234?p=x#@evil.example",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/..\\evil.example",
        "https://teams.microsoft.com/meet/2345678901234#javascript:alert(1)",
    ],
)
async def test_import_refuses_anything_but_a_teams_link(meetings_client: Client, url: str) -> None:
    (alice,) = await users(meetings_client, "alice")
    spy_of(meetings_client.runtime.adapters.store).calls.clear()
    resp = await meetings_client.request(
        "POST", "/api/meetings/import", headers=alice, json_body=meeting_body(joinUrl=url)
    )
    assert resp.status == 400
    assert resp.json()["code"] == "invalid_join_url"
    assert spy_of(meetings_client.runtime.adapters.store).calls == {}


async def test_in_azure_without_graph_scheduling_is_404_but_the_rest_works(tmp_path: Path) -> None:
    seed_keys(tmp_path)
    built = make_runtime(tmp_path)
    rt = Runtime(built.settings, dataclasses.replace(built.adapters, meeting_provider=None))
    set_runtime(rt)
    try:
        client = Client(rt)
        alice, bob = await users(client, "alice", "bob")
        resp = await client.request(
            "POST", "/api/meetings", headers=alice, json_body=meeting_body()
        )
        assert resp.status == 404
        assert resp.json()["code"] == "meetings_not_configured"
        imported = await client.request(
            "POST",
            "/api/meetings/import",
            headers=alice,
            json_body=meeting_body(joinUrl=SHORT, invitees=["bob"]),
        )
        assert imported.status == 201
        path = f"/api/meetings/{imported.json()['meetingId']}"
        assert (await client.request("GET", path, headers=bob)).status == 200
        day = await client.request(
            "GET", "/api/meetings", headers=bob, params={"date": "2026-11-23"}
        )
        assert len(day.json()["items"]) == 1
        assert (await client.request("DELETE", path, headers=alice)).status == 204
    finally:
        set_runtime(None)
        await rt.close()


async def test_a_store_failure_leaves_no_half_meeting(meetings_client: Client) -> None:
    client = meetings_client
    alice, bob = await users(client, "alice", "bob")
    store = spy_of(client.runtime.adapters.store)
    store.fail["upsert:agenda"] = store_down()
    resp = await client.request(
        "POST", "/api/meetings", headers=alice, json_body=meeting_body(invitees=["bob"])
    )
    assert resp.status == 503
    assert resp.headers["retry-after"] == "3"
    store.fail.clear()
    for who in ("alice", "bob"):
        assert (await client.runtime.adapters.store.query("agenda", who)).items == []
    provider = local_provider(client)
    db = provider._connect()
    assert db.execute("SELECT count(*) FROM meetings").fetchone() == (0,)
    day = await client.request("GET", "/api/meetings", headers=bob, params={"date": "2026-11-23"})
    assert day.json() == {"items": []}


async def test_erase_cancels_organized_meetings_and_leaves_invitations(
    meetings_client: Client,
) -> None:
    client = meetings_client
    alice, bob, carol = await users(client, "alice", "bob", "carol")
    own = await client.request(
        "POST", "/api/meetings", headers=alice, json_body=meeting_body(invitees=["bob"])
    )
    theirs = await client.request(
        "POST",
        "/api/meetings",
        headers=carol,
        json_body=meeting_body(invitees=["alice", "bob"], subject="Carol's"),
    )
    assert own.status == theirs.status == 201
    assert (await client.request("DELETE", "/api/me", headers=alice)).status == 204
    await client.runtime.reactor.drain()

    own_path = f"/api/meetings/{own.json()['meetingId']}"
    theirs_path = f"/api/meetings/{theirs.json()['meetingId']}"
    assert (await client.request("GET", own_path, headers=bob)).status == 404
    for who in (bob, carol):
        seen = await client.request("GET", theirs_path, headers=who)
        assert seen.json()["invitees"] == ["bob"]
        day = await client.request(
            "GET", "/api/meetings", headers=who, params={"date": "2026-11-23"}
        )
        assert [m["invitees"] for m in day.json()["items"]] == [["bob"]]
    assert (await client.runtime.adapters.store.query("agenda", "alice")).items == []
    # A second erase (a retried DELETE /api/me) finds nothing more to do.
    assert (await client.request("DELETE", "/api/me", headers=alice)).status == 204
    await client.runtime.reactor.drain()
