"""Club calls in ACS rooms (CLUB_CALLS=rooms, issue 24) on both stores (SQLite and the
Cosmos-protocol server), as two instances sharing one store and one rooms service (ACS is one
service; the local provider stands for it and admits only its roster, as ACS does).

Racing starters end with one room and the losers' rooms deleted; only members who ask reach the
roster, an outsider holding the room id is refused; leave, removal and erase take people off the
roster after a drain; a replayed old CallEnded keeps the new room; a member's repeated GET makes
no rooms call and the same store reads as group mode (PortSpy). Each scenario ends with the
clubs' integrity check and the rooms' own: every room that exists is the active call's, and its
roster holds only members.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from switchboard import errors
from switchboard.adapters.rooms_local import LocalRoomsProvider
from switchboard.ports import DocumentStore, RoomParticipant
from switchboard.runtime import Runtime
from switchboard.services.caller import Caller
from switchboard.services.calls import CallEnded
from tests.conftest import make_runtime
from tests.contract.test_clubs_on_both_stores import _second_client
from tests.integrity.clubs import check, documents
from tests.proxies import spy, spy_of


class RecordingRooms(LocalRoomsProvider):
    """The local provider, remembering every room it created (the losers' too)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.created: list[str] = []

    async def create_room(
        self,
        valid_from: datetime,
        valid_until: datetime,
        participants: Sequence[RoomParticipant],
    ) -> str:
        room_id = await super().create_room(valid_from, valid_until, participants)
        self.created.append(room_id)
        return room_id


@dataclasses.dataclass
class World:
    a: Runtime
    b: Runtime
    rooms: RecordingRooms

    def live_rooms(self) -> list[str]:
        return [r for r in self.rooms.created if self.rooms.exists(r)]


def _rooms_runtime(tmp_path: Path, store: DocumentStore, rooms: Any) -> Runtime:
    base = make_runtime(tmp_path, store=store, CLUB_CALLS="rooms")
    return Runtime(base.settings, dataclasses.replace(base.adapters, rooms_provider=rooms))


@pytest.fixture
async def world(store: DocumentStore, tmp_path: Path) -> AsyncIterator[World]:
    rooms = RecordingRooms(tmp_path)
    first = _rooms_runtime(tmp_path, spy(store), spy(rooms))
    second_store = _second_client(store)
    second = _rooms_runtime(tmp_path, second_store, rooms)
    yield World(first, second, rooms)
    await second_store.close()
    await first.chat_provider.close()
    await second.chat_provider.close()
    await rooms.close()


async def settle(w: World) -> None:
    """Both instances drain, then the clubs' invariants and the rooms' hold."""
    await asyncio.gather(w.a.reactor.drain(), w.b.reactor.drain())
    await w.a.reactor.drain()
    assert await check(w.a.adapters.store, w.a.chat_provider) == []
    calls = {d["pk"]: d for d in await documents(w.a.adapters.store, "clubs") if d["id"] == "call"}
    active = {d.get("roomId") for d in calls.values()}
    assert set(w.live_rooms()) <= active, "a room outlived its call"
    for club_id, call in calls.items():
        room_id = call.get("roomId")
        if room_id is None:
            continue
        members = [
            d["userId"]
            for d in await documents(w.a.adapters.store, "clubs")
            if d["pk"] == club_id and d.get("type") == "member"
        ]
        found = await w.a.identity.get_many(members)
        member_ids = {p.communication_user_id for p in found.values()}
        assert set(w.rooms.participants(room_id)) <= member_ids, "a non-member on the roster"


async def signed_in(rt: Runtime, *names: str) -> dict[str, str]:
    """Users with ACS identities; their ACS ids by name."""
    ids = {}
    for name in names:
        token = await rt.identity.issue_token(Caller(name, name.title()), None, None)
        ids[name] = token.communication_user_id
    return ids


async def test_racing_starters_get_one_room_and_the_losers_rooms_are_deleted(
    world: World,
) -> None:
    a, b = world.a, world.b
    people = [f"u{n}" for n in range(8)]
    await signed_in(a, *people)
    club = await a.clubs.create_club("u0", "Chess", "open")
    for n, person in enumerate(people[1:], 1):
        await (a if n % 2 else b).clubs.join(person, club.club_id)

    async def start(n: int) -> str | None:
        rt = a if n % 2 else b
        try:
            return (await rt.clubs.register_call(f"u{n}", club.club_id, None))[0].room_id
        except errors.CallAlreadyActive as exc:
            return exc.extra["roomId"] if exc.extra["groupCallId"] is None else "a group call"

    told = await asyncio.gather(*(start(n) for n in range(len(people))))
    assert len(set(told)) == 1
    [room_id] = set(told)
    assert room_id is not None
    assert (await b.clubs.get_call("u3", club.club_id)).room_id == room_id
    await settle(world)
    # However many rooms the race made, only the winner's exists now.
    assert world.live_rooms() == [room_id]
    assert len(world.rooms.created) > 1  # the race did make losers' rooms


async def test_only_members_reach_the_roster(world: World) -> None:
    a, b = world.a, world.b
    ids = await signed_in(a, "owner", "member", "outsider")
    club = await a.clubs.create_club("owner", "Chess", "invite")
    await a.clubs.invite("owner", club.club_id, "member")
    await b.clubs.join("member", club.club_id)
    view, created = await a.clubs.register_call("member", club.club_id, None)
    assert created
    room_id = view.room_id
    assert room_id is not None
    with pytest.raises(errors.NotFound):
        await b.clubs.get_call("outsider", club.club_id)
    await b.clubs.get_call("owner", club.club_id)
    assert world.rooms.participants(room_id) == {
        ids["owner"]: "Presenter",
        ids["member"]: "Attendee",
    }
    # The outsider knows the room id (a screenshot): ACS — here its local stand-in — refuses.
    assert world.rooms.admits(room_id, ids["outsider"]) is None
    assert world.rooms.admits(room_id, ids["member"]) == "Attendee"
    await settle(world)


async def test_leave_remove_and_erase_take_people_off_the_roster(world: World) -> None:
    a, b = world.a, world.b
    ids = await signed_in(a, "owner", "leaver", "removed", "erased", "stayer")
    club = await a.clubs.create_club("owner", "Chess", "open")
    for person in ("leaver", "removed", "erased", "stayer"):
        await b.clubs.join(person, club.club_id)
    view, _ = await a.clubs.register_call("owner", club.club_id, None)
    room_id = view.room_id
    assert room_id is not None
    for n, person in enumerate(("leaver", "removed", "erased", "stayer")):
        await (a if n % 2 else b).clubs.get_call(person, club.club_id)
    assert len(world.rooms.participants(room_id)) == 5
    await asyncio.gather(
        a.clubs.remove_member("leaver", club.club_id, "leaver"),
        b.clubs.remove_member("owner", club.club_id, "removed"),
        a.identity.erase(Caller("erased")),
    )
    await settle(world)
    assert world.rooms.participants(room_id) == {
        ids["owner"]: "Presenter",
        ids["stayer"]: "Attendee",
    }


async def test_a_get_racing_a_leave_never_leaves_a_former_member_on_the_roster(
    world: World,
) -> None:
    a, b = world.a, world.b
    ids = await signed_in(a, "owner", *(f"m{n}" for n in range(6)))
    club = await a.clubs.create_club("owner", "Chess", "open")
    for n in range(6):
        await a.clubs.join(f"m{n}", club.club_id)
    view, _ = await a.clubs.register_call("owner", club.club_id, None)
    room_id = view.room_id
    assert room_id is not None

    async def get(n: int) -> None:
        with contextlib.suppress(errors.NotAMember):  # left first: 403
            await (a if n % 2 else b).clubs.get_call(f"m{n}", club.club_id)

    async def leave(n: int) -> None:
        await (b if n % 2 else a).clubs.remove_member(f"m{n}", club.club_id, f"m{n}")

    await asyncio.gather(*(get(n) for n in range(6)), *(leave(n) for n in range(0, 6, 2)))
    await settle(world)
    stayed = {ids[f"m{n}"] for n in range(1, 6, 2)}
    assert set(world.rooms.participants(room_id)) <= {ids["owner"], *stayed}


async def test_a_replayed_old_call_ended_keeps_the_new_room(world: World) -> None:
    a, b = world.a, world.b
    await signed_in(a, "owner")
    club = await a.clubs.create_club("owner", "Chess", "open")
    old, _ = await a.clubs.register_call("owner", club.club_id, None)
    assert old.room_id is not None
    await settle(world)
    ended_at = datetime.now(UTC)
    assert await b.calls.handle(CallEnded("e1", ended_at, None, old.room_id)) == "cleared 1"
    await settle(world)
    assert not world.rooms.exists(old.room_id)
    new, created = await b.clubs.register_call("owner", club.club_id, None)
    assert created
    assert new.room_id is not None
    await settle(world)
    # The old event again (at least once), and one naming the new room dated before it began.
    assert await a.calls.handle(CallEnded("e1", ended_at, None, old.room_id)) == "cleared 0"
    early = new.started_at - timedelta(seconds=1)
    assert await a.calls.handle(CallEnded("e2", early, None, new.room_id)) == "cleared 0"
    await settle(world)
    assert world.rooms.exists(new.room_id)
    assert (await a.clubs.get_call("owner", club.club_id)).room_id == new.room_id
    assert world.live_rooms() == [new.room_id]


async def test_a_repeated_get_costs_no_rooms_call_and_group_modes_reads(
    world: World, store: DocumentStore, tmp_path: Path
) -> None:
    a = world.a
    await signed_in(a, "owner", "member")
    club = await a.clubs.create_club("owner", "Chess", "open")
    await a.clubs.join("member", club.club_id)
    await a.clubs.register_call("owner", club.club_id, None)
    await a.clubs.get_call("member", club.club_id)
    await a.reactor.drain()
    counted, rooms = spy_of(a.adapters.store), spy_of(a.rooms_provider)
    counted.calls.clear()
    rooms.calls.clear()
    await a.clubs.get_call("member", club.club_id)
    assert rooms.calls == {}
    rooms_reads = dict(counted.calls)
    # The same store, read as group mode: the same one batched read.
    group = make_runtime(tmp_path, store=spy(store))
    await signed_in(group, "g-owner", "g-member")
    other = await group.clubs.create_club("g-owner", "Go", "open")
    await group.clubs.join("g-member", other.club_id)
    await group.clubs.register_call(
        "g-owner", other.club_id, "3f0c1a52-7f7e-4c55-9b43-0b1f3f5a6e01"
    )
    spy_of(group.adapters.store).calls.clear()
    await group.clubs.get_call("g-member", other.club_id)
    assert rooms_reads == dict(spy_of(group.adapters.store).calls) == {"read_many": 1}
    await group.reactor.drain()
    await group.chat_provider.close()
    await settle(world)
