"""Club calls in ACS rooms (CLUB_CALLS=rooms, issue 24) through the registered handlers, on the
local rooms provider, which admits only its roster as ACS does (`admits`): the starter and the
members who GET the call are admitted in their roles, a second and third user who are not
members are not (even holding the room id); a body naming a group call is 400; 409 carries the
winner's roomId; leaving, removal and erase take people off the roster after a drain; DELETE
and a rooms CallEnded delete the room, an old CallEnded never the newer one; the call-started
push carries roomId; a repeated GET costs no rooms call (PortSpy)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from switchboard.adapters.rooms_local import LocalRoomsProvider
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.runtime import Runtime, set_runtime
from tests.conftest import Client, app_server, make_runtime
from tests.proxies import spy, spy_of

GID = "3f0c1a52-7f7e-4c55-9b43-0b1f3f5a6e01"


@pytest.fixture
async def rooms_client(tmp_path: Path) -> AsyncIterator[Client]:
    """A rooms-mode client; the store and the local rooms provider are spied on."""
    base = make_runtime(
        tmp_path, store=spy(SqliteStore(tmp_path / "switchboard.sqlite")), CLUB_CALLS="rooms"
    )
    rooms = spy(LocalRoomsProvider(tmp_path))
    rt = Runtime(base.settings, dataclasses.replace(base.adapters, rooms_provider=rooms))
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


def local_rooms(client: Client) -> LocalRoomsProvider:
    provider: Any = spy_of(client.runtime.rooms_provider).inner
    assert isinstance(provider, LocalRoomsProvider)
    return provider


async def acs_id(client: Client, user: str) -> str:
    profile = (await client.runtime.identity.get_many([user]))[user]
    assert profile.communication_user_id
    return profile.communication_user_id


async def users(client: Client, *names: str) -> list[dict[str, str]]:
    """Signed-in users with ACS identities (as after their first token)."""
    headers = []
    for name in names:
        h = client.login(name, name.title())
        assert (await client.request("POST", "/api/token", headers=h)).status == 200
        headers.append(h)
    return headers


async def club(client: Client, owner: dict[str, str], visibility: str = "open") -> str:
    resp = await client.request(
        "POST", "/api/clubs", headers=owner, json_body={"name": "Chess", "visibility": visibility}
    )
    assert resp.status == 201, resp.body
    return str(resp.json()["clubId"])


async def invite_and_accept(
    client: Client, owner: dict[str, str], club_id: str, user: str, who: dict[str, str]
) -> None:
    put = await client.request("PUT", f"/api/clubs/{club_id}/members/{user}", headers=owner)
    assert put.status == 200, put.body
    assert (await client.request("POST", f"/api/clubs/{club_id}/join", headers=who)).status == 200


async def start(client: Client, who: dict[str, str], club_id: str) -> str:
    put = await client.request("PUT", f"/api/clubs/{club_id}/call", headers=who)
    assert put.status == 201, put.body
    body = put.json()
    assert body["groupCallId"] is None
    assert body["roomId"].isdigit()  # ACS-shaped: 17 decimal digits
    assert len(body["roomId"]) == 17
    return str(body["roomId"])


async def test_only_members_who_ask_reach_the_roster_in_their_roles(rooms_client: Client) -> None:
    client = rooms_client
    alice, bob, carol, dan = await users(client, "alice", "bob", "carol", "dan")
    club_id = await club(client, alice, "invite")
    await invite_and_accept(client, alice, club_id, "bob", bob)
    await invite_and_accept(client, alice, club_id, "dan", dan)
    room_id = await start(client, bob, club_id)
    local = local_rooms(client)
    # The starter is on the roster; nobody else yet (the roster grows one GET at a time).
    assert local.participants(room_id) == {await acs_id(client, "bob"): "Attendee"}
    assert local.admits(room_id, await acs_id(client, "alice")) is None
    got = await client.request("GET", f"/api/clubs/{club_id}/call", headers=alice)
    assert got.status == 200
    assert (got.json()["roomId"], got.json()["groupCallId"]) == (room_id, None)
    assert got.json()["startedBy"] == "bob"
    assert local.admits(room_id, await acs_id(client, "alice")) == "Presenter"  # the owner
    # A third user, not a member, holding the room id: 404 here, and ACS refuses them too.
    outsider = await client.request("GET", f"/api/clubs/{club_id}/call", headers=carol)
    assert outsider.status == 404
    assert local.admits(room_id, await acs_id(client, "carol")) is None
    assert await acs_id(client, "carol") not in local.participants(room_id)
    # Dan is a member who never asked to join the call: not on the roster either.
    assert local.admits(room_id, await acs_id(client, "dan")) is None
    # The club list and the club show the same call, with its roomId.
    listed = await client.request("GET", "/api/clubs", headers=dan)
    assert listed.json()["items"][0]["activeCall"]["roomId"] == room_id


async def test_an_open_clubs_outsider_gets_todays_answer_and_no_seat(rooms_client: Client) -> None:
    client = rooms_client
    alice, bob = await users(client, "alice", "bob")
    club_id = await club(client, alice, "open")
    room_id = await start(client, alice, club_id)
    outsider = await client.request("GET", f"/api/clubs/{club_id}/call", headers=bob)
    assert (outsider.status, outsider.json()["code"]) == (403, "not_a_member")
    assert (await client.request("PUT", f"/api/clubs/{club_id}/call", headers=bob)).status == 403
    assert local_rooms(client).participants(room_id) == {await acs_id(client, "alice"): "Presenter"}


async def test_a_group_call_id_is_400_in_rooms_mode_and_an_empty_body_is_fine(
    rooms_client: Client,
) -> None:
    client = rooms_client
    (alice,) = await users(client, "alice")
    club_id = await club(client, alice)
    spy_of(client.runtime.rooms_provider).calls.clear()
    named = await client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=alice, json_body={"groupCallId": GID}
    )
    assert (named.status, named.json()["code"], named.json()["field"]) == (
        400,
        "invalid_input",
        "groupCallId",
    )
    assert spy_of(client.runtime.rooms_provider).calls == {}  # changed nothing
    empty = await client.request("PUT", f"/api/clubs/{club_id}/call", headers=alice, json_body={})
    assert empty.status == 201
    assert empty.json()["roomId"]


async def test_no_body_is_400_in_group_mode(client: Client) -> None:
    alice = client.login("alice")
    club_id = await club(client, alice)
    resp = await client.request("PUT", f"/api/clubs/{club_id}/call", headers=alice)
    assert (resp.status, resp.json()["field"]) == (400, "groupCallId")
    put = await client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=alice, json_body={"groupCallId": GID}
    )
    assert (put.json()["groupCallId"], put.json()["roomId"]) == (GID, None)


async def test_a_second_start_is_409_with_the_winners_room_and_makes_no_room(
    rooms_client: Client,
) -> None:
    client = rooms_client
    alice, bob = await users(client, "alice", "bob")
    club_id = await club(client, alice)
    assert (await client.request("POST", f"/api/clubs/{club_id}/join", headers=bob)).status == 200
    room_id = await start(client, alice, club_id)
    spy_of(client.runtime.rooms_provider).calls.clear()
    clash = await client.request("PUT", f"/api/clubs/{club_id}/call", headers=bob)
    assert clash.status == 409
    assert (clash.json()["code"], clash.json()["roomId"], clash.json()["groupCallId"]) == (
        "call_active",
        room_id,
        None,
    )
    assert spy_of(client.runtime.rooms_provider).calls == {}


async def test_a_members_repeated_get_costs_no_rooms_call_and_group_modes_reads(
    rooms_client: Client,
) -> None:
    client = rooms_client
    alice, bob = await users(client, "alice", "bob")
    club_id = await club(client, alice)
    assert (await client.request("POST", f"/api/clubs/{club_id}/join", headers=bob)).status == 200
    await start(client, alice, club_id)
    await client.runtime.reactor.drain()
    store, rooms = spy_of(client.runtime.adapters.store), spy_of(client.runtime.rooms_provider)
    store.calls.clear()
    rooms.calls.clear()
    first = await client.request("GET", f"/api/clubs/{club_id}/call", headers=bob)
    assert first.status == 200
    # One roster call; the reads of group mode plus the caller's ACS id; the roster record
    # (unconfirmed, then confirmed) and the member reconciler's work around the ACS call.
    assert rooms.calls == {"add_or_update_participants": 1}
    assert store.calls == {"read_many": 1, "read": 1, "upsert": 4}, store.calls
    await client.runtime.reactor.drain()
    store.calls.clear()
    rooms.calls.clear()
    again = await client.request("GET", f"/api/clubs/{club_id}/call", headers=bob)
    assert again.json() == first.json()
    assert rooms.calls == {}
    assert store.calls == {"read_many": 1}  # as in group mode (test_clubs_routes)
    # The starter was put on the roster by the PUT: their first GET costs nothing either.
    store.calls.clear()
    assert (await client.request("GET", f"/api/clubs/{club_id}/call", headers=alice)).status == 200
    assert (rooms.calls, store.calls) == ({}, {"read_many": 1})


async def test_leave_remove_and_erase_take_people_off_the_roster(rooms_client: Client) -> None:
    client = rooms_client
    alice, bob, carol, dan = await users(client, "alice", "bob", "carol", "dan")
    club_id = await club(client, alice)
    for who in (bob, carol, dan):
        joined = await client.request("POST", f"/api/clubs/{club_id}/join", headers=who)
        assert joined.status == 200
    room_id = await start(client, alice, club_id)
    for who in (bob, carol, dan):
        assert (
            await client.request("GET", f"/api/clubs/{club_id}/call", headers=who)
        ).status == 200
    local = local_rooms(client)
    ids = {name: await acs_id(client, name) for name in ("alice", "bob", "carol", "dan")}
    assert len(local.participants(room_id)) == 4
    # Bob leaves, the owner removes Carol, Dan erases himself.
    base = f"/api/clubs/{club_id}/members"
    assert (await client.request("DELETE", f"{base}/bob", headers=bob)).status == 204
    assert (await client.request("DELETE", f"{base}/carol", headers=alice)).status == 204
    assert (await client.request("DELETE", "/api/me", headers=dan)).status == 204
    await client.runtime.reactor.drain()
    assert local.participants(room_id) == {ids["alice"]: "Presenter"}
    for name in ("bob", "carol", "dan"):
        assert local.admits(room_id, ids[name]) is None
    # Their roster records went with them; the call itself is untouched.
    records = await client.runtime.adapters.store.query("clubs", club_id, where={"type": "roster"})
    assert [d["userId"] for d in records.items] == ["alice"]
    assert (await client.request("GET", f"/api/clubs/{club_id}/call", headers=alice)).status == 200


async def test_delete_call_deletes_the_room(rooms_client: Client) -> None:
    client = rooms_client
    (alice,) = await users(client, "alice")
    club_id = await club(client, alice)
    room_id = await start(client, alice, club_id)
    local = local_rooms(client)
    ended = await client.request("DELETE", f"/api/clubs/{club_id}/call", headers=alice)
    assert ended.status == 204
    assert local.exists(room_id)  # the reconciler deletes it, not the request
    await client.runtime.reactor.drain()
    assert not local.exists(room_id)
    gone = await client.request("GET", f"/api/clubs/{club_id}/call", headers=alice)
    assert (gone.status, gone.json()["code"]) == (404, "no_active_call")
    assert (
        await client.runtime.adapters.store.query("clubs", club_id, where={"type": "room"})
    ).items == []


def rooms_call_ended(room_id: str, when: str) -> func.EventGridEvent:
    """Microsoft's published CallEnded sample for a rooms call (MicrosoftDocs/azure-docs,
    articles/event-grid/communication-services-voice-video-events.md): `isRoomsCall` true,
    `room.id` the room, `group.id` the nil UUID."""
    from switchboard.dev.devserver import _event

    return _event(
        {
            "id": "530183db-987b-4a3a-b6c1-3391bab12864",
            "topic": "/subscriptions/s/resourcegroups/g/providers/microsoft.communication/"
            "communicationservices/acs",
            "subject": "call/c2VydmVyQ2FsbElk",
            "data": {
                "durationOfCall": 49.7,
                "startedBy": {
                    "communicationIdentifier": {
                        "rawId": "8:acs:bc360ba8_0000000c",
                        "communicationUser": {"id": "8:acs:bc360ba8_0000000c"},
                    },
                    "role": "Attendee",
                },
                "serverCallId": "c2VydmVyQ2FsbElk",
                "group": {"id": "00000000-0000-0000-0000-000000000000"},
                "room": {"id": room_id},
                "isTwoParty": False,
                "correlationId": "c0ffee",
                "isRoomsCall": True,
            },
            "eventType": "Microsoft.Communication.CallEnded",
            "dataVersion": "1.0",
            "metadataVersion": "1",
            "eventTime": when,
        }
    )


async def call_events(event: func.EventGridEvent) -> None:
    arg, handler = app_server().event_grid["call_events"]
    await handler(**{arg: event})


async def test_a_rooms_call_ended_clears_the_call_and_an_old_one_keeps_the_new_room(
    rooms_client: Client,
) -> None:
    client = rooms_client
    (alice,) = await users(client, "alice")
    club_id = await club(client, alice)
    first = await start(client, alice, club_id)
    await client.runtime.reactor.drain()  # the call index names the room
    await call_events(rooms_call_ended(first, _now_iso()))
    await client.runtime.reactor.drain()
    local = local_rooms(client)
    assert not local.exists(first)
    assert (await client.request("GET", f"/api/clubs/{club_id}/call", headers=alice)).status == 404
    second = await start(client, alice, club_id)
    await client.runtime.reactor.drain()
    # The first call's CallEnded delivered again, and one for the new room dated before it
    # started: neither clears the new call.
    await call_events(rooms_call_ended(first, _now_iso()))
    await call_events(rooms_call_ended(second, "2026-01-01T00:00:00Z"))
    await client.runtime.reactor.drain()
    assert local.exists(second)
    got = await client.request("GET", f"/api/clubs/{club_id}/call", headers=alice)
    assert got.json()["roomId"] == second


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def test_the_call_started_push_carries_the_room(rooms_client: Client) -> None:
    client = rooms_client
    alice, bob = await users(client, "alice", "bob")
    club_id = await club(client, alice)
    assert (await client.request("POST", f"/api/clubs/{club_id}/join", headers=bob)).status == 200
    device = {"platform": "apns", "pushChannel": "a1b2c3d4e5f6"}
    put = await client.request("PUT", "/api/me/devices/bobs-phone", headers=bob, json_body=device)
    assert put.status == 204
    room_id = await start(client, alice, club_id)
    await client.runtime.reactor.drain()
    sender: Any = client.runtime.push_sender
    [sent] = await sender.sent()
    assert sent["data"]["roomId"] == room_id
    assert sent["data"].get("groupCallId", "") == ""
