"""ChatService rules on a real SQLite store and the real local chat provider, each spied on:
direct threads (friends only, created once even when both sides race), club threads following
members (failures repaired at the next change, the 250 cap), meeting chats, erase, listing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.adapters.chat_local import LOCAL_SERVICE_USER, LocalChatProvider
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.services.chat import ChatService
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


async def test_club_thread_follows_its_members(world: World) -> None:
    for user in ("owner", "ann", "ben"):
        await world.service.club_member_added("c1", "Chess", user)
    thread_id = await world.club_thread()
    assert world.local.participants(thread_id) == {
        LOCAL_SERVICE_USER,
        acs("owner"),
        acs("ann"),
        acs("ben"),
    }
    assert await world.service.club_thread_id("c1", "ann") == thread_id
    assert await world.thread_ids("ann") == [thread_id]

    await world.service.club_member_removed("c1", "ann")

    assert acs("ann") not in world.local.participants(thread_id)
    assert await world.service.club_thread_id("c1", "ann") is None
    assert await world.thread_ids("ann") == []
    assert await world.service.club_thread_id("c1", "outsider") is None


async def test_a_join_costs_at_most_one_chat_call(world: World) -> None:
    await world.service.club_member_added("c1", "Chess", "owner")
    assert world.chat_calls == {"create_thread": 1}
    world.reset()

    await world.service.club_member_added("c1", "Chess", "ann")

    assert world.chat_calls == {"add_participants": 1}


async def test_a_failed_chat_call_never_fails_the_join_and_the_next_change_repairs_it(
    world: World,
) -> None:
    await world.service.club_member_added("c1", "Chess", "owner")
    thread_id = await world.club_thread()
    spy_of(world.chat).fail["add_participants"] = DependencyUnavailable("chat")

    await world.service.club_member_added("c1", "Chess", "ann")  # does not raise

    assert acs("ann") not in world.local.participants(thread_id)
    assert await world.service.club_thread_id("c1", "ann") is None

    del spy_of(world.chat).fail["add_participants"]
    await world.service.club_member_added("c1", "Chess", "ben")  # the club's next change

    assert {acs("ann"), acs("ben")} <= world.local.participants(thread_id)
    assert await world.service.club_thread_id("c1", "ann") == thread_id
    assert await world.thread_ids("ann") == [thread_id]


async def test_a_failed_removal_is_repaired_at_the_next_change(world: World) -> None:
    for user in ("owner", "ann"):
        await world.service.club_member_added("c1", "Chess", user)
    thread_id = await world.club_thread()
    spy_of(world.chat).fail["remove_participant"] = DependencyUnavailable("chat")

    await world.service.club_member_removed("c1", "ann")
    assert acs("ann") in world.local.participants(thread_id)  # ACS still has her
    assert await world.thread_ids("ann") == []  # but her list does not

    del spy_of(world.chat).fail["remove_participant"]
    await world.service.club_member_added("c1", "Chess", "ben")
    assert acs("ann") not in world.local.participants(thread_id)


async def test_a_store_outage_in_the_hook_is_logged_not_raised(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    spy_of(world.store).fail["create:system"] = DependencyUnavailable("store")
    await world.service.club_member_added("c1", "Chess", "owner")
    assert "club chat not updated" in caplog.text


async def test_members_past_the_cap_wait_and_take_freed_seats(tmp_path: Path) -> None:
    w = World(tmp_path, seats=2)
    try:
        for user in ("owner", "ann", "ben", "cy"):
            await w.service.club_member_added("c1", "Chess", user)
        thread_id = await w.club_thread()
        assert w.local.participants(thread_id) == {LOCAL_SERVICE_USER, acs("owner"), acs("ann")}
        assert await w.service.club_thread_id("c1", "ben") is None
        assert await w.thread_ids("ben") == []

        await w.service.club_member_removed("c1", "ann")

        assert w.local.participants(thread_id) == {LOCAL_SERVICE_USER, acs("owner"), acs("ben")}
        assert await w.service.club_thread_id("c1", "ben") == thread_id
        assert await w.service.club_thread_id("c1", "cy") is None
    finally:
        await w.sqlite.close()
        await w.local.close()


async def test_deleting_the_club_deletes_its_thread(world: World) -> None:
    for user in ("owner", "ann"):
        await world.service.club_member_added("c1", "Chess", user)
    thread_id = await world.club_thread()

    await world.service.club_deleted("c1")

    assert not world.local.exists(thread_id)
    assert await world.thread_ids("owner") == []
    assert await world.thread_ids("ann") == []
    assert await world.service.club_thread_id("c1", "owner") is None


async def test_a_thread_deleted_behind_our_back_is_made_again(world: World) -> None:
    await world.service.club_member_added("c1", "Chess", "owner")
    first = await world.club_thread()
    await world.local.delete_thread(first)

    await world.service.club_member_added("c1", "Chess", "ann")  # finds it gone
    await world.service.club_member_added("c1", "Chess", "ben")  # makes a new one

    second = await world.club_thread()
    assert second != first
    assert {acs("owner"), acs("ann"), acs("ben")} <= world.local.participants(second)


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
    for user in ("owner", "alice"):
        await world.service.club_member_added("c1", "Chess", user)
    club_thread = await world.club_thread()
    await world.service.meeting_listed("m1", "Standup", None, ["alice", "bob"])
    assert direct.thread_id is not None

    await world.service.purge_user("alice")
    await world.service.purge_user("alice")  # idempotent

    assert await world.thread_ids("alice") == []
    assert not world.local.exists(direct.thread_id)
    assert acs("alice") not in world.local.participants(club_thread)
    assert acs("owner") in world.local.participants(club_thread)
    assert [t.kind for t in (await world.service.list_threads("bob", None)).items] == ["meeting"]


async def test_a_missed_end_of_friendship_is_finished_by_the_next_call(world: World) -> None:
    opened = await world.service.open_direct_thread("alice", "bob")
    assert opened.thread_id is not None
    world.friends.pairs.clear()  # unfriended; say the friends service's call to chat was lost

    with pytest.raises(errors.NotFound):
        await world.service.open_direct_thread("bob", "alice")

    assert not world.local.exists(opened.thread_id)
    assert await world.thread_ids("alice") == []


async def test_the_club_observer_names_a_new_thread_after_the_club(tmp_path: Path) -> None:
    w = World(tmp_path)
    names = {"c9": "Knitting"}

    async def club_topic(club_id: str, member_id: str) -> str | None:
        return names.get(club_id)

    service = ChatService(w.store, w.chat, lookup, club_topic=club_topic)
    try:
        await service.member_added("c9", "owner")
        await service.member_added("c9", "ann")
        await service.call_started("c9", "Knitting", "g", "ann", None)  # nothing to do
        (thread,) = (await service.list_threads("ann", None)).items
        assert (thread.kind, thread.club_id, thread.topic) == ("club", "c9", "Knitting")

        await service.member_removed("c9", "ann")
        assert (await service.list_threads("ann", None)).items == []
        await service.club_deleted("c9", ["owner"])
        assert (await service.list_threads("owner", None)).items == []
        assert w.local.thread_count() == 0
    finally:
        await w.sqlite.close()
        await w.local.close()


async def test_the_thread_id_is_told_to_clubs_once_and_retold_after_a_failure(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    told: list[tuple[str, str | None]] = []
    failures = [DependencyUnavailable("store")]

    async def club_thread_changed(club_id: str, thread_id: str | None) -> None:
        if failures:
            raise failures.pop()
        told.append((club_id, thread_id))

    service = ChatService(w.store, w.chat, lookup, club_thread_changed=club_thread_changed)
    try:
        await service.member_added("c1", "owner")  # thread made; telling clubs fails
        assert told == []
        await service.member_added("c1", "ann")  # the next change tells it
        await service.member_added("c1", "ben")  # already told: not again
        assert told == [("c1", await w.club_thread())]
    finally:
        await w.sqlite.close()
        await w.local.close()
