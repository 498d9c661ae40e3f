"""ChatService rules on a real SQLite store and the real local chat provider, each spied on:
direct threads (friends only, created once even when both sides race), club threads following
members (reconciled against ACS's own list, failures retried, the 250 cap), meeting chats,
erase, listing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.adapters.chat_local import LOCAL_SERVICE_USER, LocalChatProvider
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.ports import ChatParticipant
from switchboard.services.chat import ChatService
from switchboard.services.hooks import ProfileInfo
from tests.proxies import spy, spy_of


def acs(user: str) -> str:
    return f"8:acs:local_{user}"


class Friends:
    """Accepted friendships, as the friends capability answers `are_friends`."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = {frozenset(p) for p in pairs}

    async def are_friends(self, user_id: str, other_id: str) -> bool:
        await asyncio.sleep(0)  # let concurrent requests interleave
        return frozenset((user_id, other_id)) in self.pairs


async def lookup(user_id: str) -> tuple[str, str]:
    await asyncio.sleep(0)
    return acs(user_id), user_id.title()


class World:
    def __init__(self, tmp_path: Path, *, seats: int = 249) -> None:
        self.sqlite = SqliteStore(tmp_path / "s.sqlite")
        self.local = LocalChatProvider(tmp_path)
        self.store = spy(self.sqlite)
        self.chat = spy(self.local)
        self.friends = Friends(("alice", "bob"))
        self.service = ChatService(
            self.store, self.chat, lookup, are_friends=self.friends.are_friends, club_seats=seats
        )

    @property
    def store_calls(self) -> dict[str, int]:
        return dict(spy_of(self.store).calls)

    @property
    def chat_calls(self) -> dict[str, int]:
        return dict(spy_of(self.chat).calls)

    def reset(self) -> None:
        spy_of(self.store).calls.clear()
        spy_of(self.chat).calls.clear()

    async def thread_ids(self, user: str) -> list[str | None]:
        page = await self.service.list_threads(user, None)
        return [t.thread_id for t in page.items]

    async def club_thread(self, club: str = "c1") -> str:
        doc = await self.sqlite.read("system", f"club:{club}", f"club:{club}")
        assert doc is not None
        assert doc["threadId"]
        return str(doc["threadId"])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    yield w
    await w.sqlite.close()
    await w.local.close()


# --- direct threads ---------------------------------------------------------------------------


async def test_friends_open_one_direct_thread_both_see_it(world: World) -> None:
    opened = await world.service.open_direct_thread("alice", "bob")
    again = await world.service.open_direct_thread("bob", "alice")

    assert opened.thread_id == again.thread_id
    assert opened.thread_id is not None
    assert (opened.kind, opened.user_id, again.user_id) == ("direct", "bob", "alice")
    assert world.local.participants(opened.thread_id) == {
        LOCAL_SERVICE_USER,
        acs("alice"),
        acs("bob"),
    }
    assert world.chat_calls == {"create_thread": 1}
    assert await world.thread_ids("alice") == [opened.thread_id]
    assert await world.thread_ids("bob") == [opened.thread_id]


async def test_two_concurrent_first_calls_from_both_sides_make_one_thread(world: World) -> None:
    views = await asyncio.gather(
        world.service.open_direct_thread("alice", "bob"),
        world.service.open_direct_thread("bob", "alice"),
        world.service.open_direct_thread("alice", "bob"),
    )

    assert len({v.thread_id for v in views}) == 1
    assert world.local.thread_count() == 1


@pytest.mark.parametrize(
    ("caller", "other"), [("alice", "carol"), ("carol", "alice"), ("alice", "alice")]
)
async def test_anyone_but_an_accepted_friend_gets_404(
    world: World, caller: str, other: str
) -> None:
    with pytest.raises(errors.NotFound):
        await world.service.open_direct_thread(caller, other)
    assert world.local.thread_count() == 0
    assert await world.thread_ids(caller) == []


async def test_a_chat_outage_is_503_and_the_retry_makes_the_thread(world: World) -> None:
    spy_of(world.chat).fail["create_thread"] = DependencyUnavailable("chat", retry_after=7)
    with pytest.raises(DependencyUnavailable):
        await world.service.open_direct_thread("alice", "bob")
    assert await world.thread_ids("alice") == []

    del spy_of(world.chat).fail["create_thread"]
    opened = await world.service.open_direct_thread("bob", "alice")
    assert await world.thread_ids("alice") == [opened.thread_id]
    assert world.local.thread_count() == 1


async def test_ending_the_friendship_deletes_the_thread_for_both(world: World) -> None:
    opened = await world.service.open_direct_thread("alice", "bob")
    assert opened.thread_id is not None

    await world.service.friendship_ended("bob", "alice")

    assert not world.local.exists(opened.thread_id)
    assert await world.thread_ids("alice") == []
    assert await world.thread_ids("bob") == []
    # Friends again later: a new thread, not the deleted one.
    reopened = await world.service.open_direct_thread("alice", "bob")
    assert reopened.thread_id not in (None, opened.thread_id)


# --- club threads -----------------------------------------------------------------------------


class Clubs:
    """The clubs capability as club threads see it: members in join order, the recorded thread."""

    def __init__(self) -> None:
        self.members: dict[str, list[str]] = {}
        self.names: dict[str, str] = {}
        self.told: dict[str, str | None] = {}
        self.fail_telling = 0

    async def live_club(self, club_id: str) -> tuple[str, str | None] | None:
        if club_id not in self.members:
            return None
        return self.names.get(club_id, "Chess"), self.told.get(club_id)

    async def member_page(
        self, club_id: str, continuation: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        start = int(continuation or 0)
        ids = self.members.get(club_id, [])[start : start + limit]
        more = start + limit < len(self.members.get(club_id, []))
        return ids, str(start + limit) if more else None

    async def set_chat_thread(self, club_id: str, thread_id: str | None) -> None:
        if self.fail_telling:
            self.fail_telling -= 1
            raise DependencyUnavailable("store")
        self.told[club_id] = thread_id


class Profiles:
    """Identity's Profiles: every user has an ACS identity but those listed as without."""

    def __init__(self) -> None:
        self.without: set[str] = set()

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, ProfileInfo]:
        return {
            u: ProfileInfo(u, u.title(), None if u in self.without else acs(u), "g")
            for u in user_ids
        }


class ClubWorld(World):
    def __init__(self, tmp_path: Path, *, seats: int = 249) -> None:
        super().__init__(tmp_path, seats=seats)
        self.clubs = Clubs()
        self.profiles = Profiles()
        self.service = ChatService(
            self.store,
            self.chat,
            lookup,
            clubs=self.clubs,
            profiles=self.profiles,
            club_seats=seats,
        )

    async def members(self, club: str, *users: str) -> None:
        """The club's members are now `users` (in join order); its chat reconciles."""
        self.clubs.members[club] = list(users)
        await self.service.reconcile_club_thread(club)


@pytest.fixture
async def clubs_world(tmp_path: Path) -> AsyncIterator[ClubWorld]:
    w = ClubWorld(tmp_path)
    yield w
    await w.sqlite.close()
    await w.local.close()


async def test_club_thread_follows_its_members(clubs_world: ClubWorld) -> None:
    w = clubs_world
    await w.members("c1", "owner", "ann", "ben")
    thread_id = await w.club_thread()
    assert w.local.participants(thread_id) == {
        LOCAL_SERVICE_USER,
        acs("owner"),
        acs("ann"),
        acs("ben"),
    }
    assert await w.thread_ids("ann") == [thread_id]
    assert w.clubs.told == {"c1": thread_id}

    await w.members("c1", "owner", "ben")

    assert acs("ann") not in w.local.participants(thread_id)
    assert await w.thread_ids("ann") == []
    assert await w.thread_ids("ben") == [thread_id]


async def test_a_join_costs_one_list_and_one_add(clubs_world: ClubWorld) -> None:
    w = clubs_world
    await w.members("c1", "owner")
    assert w.chat_calls == {"create_thread": 1, "list_participants": 1}
    w.reset()
    await w.members("c1", "owner", "ann")
    assert w.chat_calls == {"list_participants": 1, "add_participants": 1}
    w.reset()
    await w.service.reconcile_club_thread("c1")  # nothing to do: one look at ACS
    assert w.chat_calls == {"list_participants": 1}


async def test_a_failed_chat_call_raises_and_the_retry_repairs_it(clubs_world: ClubWorld) -> None:
    w = clubs_world
    await w.members("c1", "owner")
    thread_id = await w.club_thread()
    spy_of(w.chat).fail["add_participants"] = DependencyUnavailable("chat")
    with pytest.raises(DependencyUnavailable):
        await w.members("c1", "owner", "ann")  # the reactor retries it with backoff
    assert acs("ann") not in w.local.participants(thread_id)
    assert await w.thread_ids("ann") == []
    del spy_of(w.chat).fail["add_participants"]
    await w.service.reconcile_club_thread("c1")
    assert acs("ann") in w.local.participants(thread_id)
    assert await w.thread_ids("ann") == [thread_id]


async def test_a_seat_acs_still_holds_is_found_in_its_own_list(clubs_world: ClubWorld) -> None:
    """A removal that failed (or anything else that put someone in the thread) is found by
    reading ACS's participant list, not the controller's own record."""
    w = clubs_world
    await w.members("c1", "owner", "ann")
    thread_id = await w.club_thread()
    spy_of(w.chat).fail["remove_participant"] = DependencyUnavailable("chat")
    with pytest.raises(DependencyUnavailable):
        await w.members("c1", "owner")
    assert acs("ann") in w.local.participants(thread_id)
    del spy_of(w.chat).fail["remove_participant"]
    await w.local.add_participants(thread_id, [ChatParticipant(acs("stranger"), "S")])
    await w.service.reconcile_club_thread("c1")
    assert w.local.participants(thread_id) == {LOCAL_SERVICE_USER, acs("owner")}
    assert await w.thread_ids("ann") == []


async def test_a_member_without_an_acs_identity_has_no_seat_until_they_have_one(
    clubs_world: ClubWorld,
) -> None:
    w = clubs_world
    w.profiles.without.add("ann")
    await w.members("c1", "owner", "ann")
    thread_id = await w.club_thread()
    assert w.local.participants(thread_id) == {LOCAL_SERVICE_USER, acs("owner")}
    assert await w.thread_ids("ann") == []
    w.profiles.without.clear()  # ann's own first token
    await w.service.reconcile_club_thread("c1")
    assert acs("ann") in w.local.participants(thread_id)


async def test_members_past_the_cap_have_no_seat_and_take_freed_ones(tmp_path: Path) -> None:
    w = ClubWorld(tmp_path, seats=2)
    try:
        await w.members("c1", "owner", "ann", "ben", "cy")
        thread_id = await w.club_thread()
        assert w.local.participants(thread_id) == {LOCAL_SERVICE_USER, acs("owner"), acs("ann")}
        assert await w.thread_ids("ben") == []

        await w.members("c1", "owner", "ben", "cy")

        assert w.local.participants(thread_id) == {LOCAL_SERVICE_USER, acs("owner"), acs("ben")}
        assert await w.thread_ids("ben") == [thread_id]
        assert await w.thread_ids("cy") == []
    finally:
        await w.sqlite.close()
        await w.local.close()


async def test_a_club_gone_loses_its_thread(clubs_world: ClubWorld) -> None:
    w = clubs_world
    await w.members("c1", "owner", "ann")
    thread_id = await w.club_thread()
    del w.clubs.members["c1"]
    await w.service.reconcile_club_thread("c1")
    assert not w.local.exists(thread_id)
    assert await w.thread_ids("owner") == []
    assert await w.thread_ids("ann") == []
    assert await w.sqlite.read("system", "club:c1", "club:c1") is None
    await w.service.reconcile_club_thread("c1")  # idempotent


async def test_a_thread_deleted_behind_our_back_is_made_again(clubs_world: ClubWorld) -> None:
    w = clubs_world
    await w.members("c1", "owner")
    first = await w.club_thread()
    await w.local.delete_thread(first)
    await w.members("c1", "owner", "ann")  # finds it gone, queues itself again
    await w.service.reconcile_club_thread("c1")  # makes a new one
    second = await w.club_thread()
    assert second != first
    assert w.local.participants(second) == {LOCAL_SERVICE_USER, acs("owner"), acs("ann")}
    assert w.clubs.told == {"c1": second}
    assert await w.thread_ids("ann") == [second]


async def test_the_thread_id_is_told_to_clubs_and_retold_after_a_failure(
    clubs_world: ClubWorld,
) -> None:
    w = clubs_world
    w.clubs.names["c1"] = "Knitting"
    w.clubs.fail_telling = 1
    with pytest.raises(DependencyUnavailable):
        await w.members("c1", "owner")
    assert w.clubs.told == {}
    await w.service.reconcile_club_thread("c1")
    thread_id = await w.club_thread()
    assert w.clubs.told == {"c1": thread_id}
    (thread,) = (await w.service.list_threads("owner", None)).items
    assert (thread.kind, thread.club_id, thread.topic) == ("club", "c1", "Knitting")


async def test_a_record_from_before_the_reaction_layer_is_taken_over(
    clubs_world: ClubWorld,
) -> None:
    """`want`/`have` records: everyone they seated is unseated and unlisted if no longer a
    member, and the record is rewritten in the new shape."""
    w = clubs_world
    await w.members("c1", "owner", "ann")
    thread_id = await w.club_thread()
    doc = await w.sqlite.read("system", "club:c1", "club:c1")
    assert doc is not None
    old = {k: v for k, v in doc.items() if k != "listed"}
    old["want"] = {"owner": [acs("owner"), "Owner"], "ann": [acs("ann"), "Ann"]}
    old["have"] = {"owner": acs("owner"), "ann": acs("ann")}
    await w.sqlite.upsert("system", old)
    await w.members("c1", "owner")
    assert await w.thread_ids("ann") == []
    assert acs("ann") not in w.local.participants(thread_id)
    fresh = await w.sqlite.read("system", "club:c1", "club:c1")
    assert fresh is not None
    assert "want" not in fresh
    assert fresh["listed"] == {"owner": acs("owner")}


# --- meetings, listing, erase -----------------------------------------------------------------


async def test_meeting_chats_are_listed_for_organizer_and_invitees(world: World) -> None:
    await world.service.meeting_listed("m1", "Standup", "19:meeting_x@thread.v2", ["o", "i1"])
    await world.service.meeting_listed("m2", "Later", None, ["o"])

    page = await world.service.list_threads("o", None)
    assert [(t.kind, t.meeting_id, t.thread_id) for t in page.items] == [
        ("meeting", "m2", None),
        ("meeting", "m1", "19:meeting_x@thread.v2"),
    ]
    assert await world.thread_ids("i1") == ["19:meeting_x@thread.v2"]
    assert await world.thread_ids("stranger") == []

    await world.service.meeting_unlisted("m1", ["o", "i1"])
    assert await world.thread_ids("i1") == []


async def test_the_list_is_one_query_newest_first_and_paged(world: World) -> None:
    for n in range(60):
        await world.service.meeting_listed(f"m{n:02}", f"S{n}", f"19:t{n}@thread.v2", ["o"])
    world.reset()

    first = await world.service.list_threads("o", None)

    assert world.store_calls == {"query": 1}
    assert first.items[0].meeting_id == "m59"
    assert len(first.items) == 50
    assert first.continuation
    second = await world.service.list_threads("o", first.continuation)
    assert [t.meeting_id for t in second.items] == [f"m{n:02}" for n in range(9, -1, -1)]


async def test_erase_leaves_every_thread_and_deletes_direct_ones(world: World) -> None:
    direct = await world.service.open_direct_thread("alice", "bob")
    await world.service.meeting_listed("m1", "Standup", None, ["alice", "bob"])
    assert direct.thread_id is not None

    await world.service.purge_user("alice")
    await world.service.purge_user("alice")  # idempotent

    assert await world.thread_ids("alice") == []
    assert not world.local.exists(direct.thread_id)
    assert [t.kind for t in (await world.service.list_threads("bob", None)).items] == ["meeting"]


async def test_a_missed_end_of_friendship_is_finished_by_the_next_call(world: World) -> None:
    opened = await world.service.open_direct_thread("alice", "bob")
    assert opened.thread_id is not None
    world.friends.pairs.clear()  # unfriended; say the friends service's call to chat was lost

    with pytest.raises(errors.NotFound):
        await world.service.open_direct_thread("bob", "alice")

    assert not world.local.exists(opened.thread_id)
    assert await world.thread_ids("alice") == []
