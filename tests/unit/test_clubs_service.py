"""The clubs service on the real SQLite store, spied: the call registry's race and idle rule,
the order of the two membership writes under failure, observers that fail, the member cap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.ports import Doc, DocumentStore
from switchboard.services.clubs import MAX_MEMBERS, ClubsService
from tests.proxies import PortSpy, spy, spy_of

CALLS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(20)]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class InterleavingStore(SqliteStore):
    """SqliteStore whose reads give the event loop a turn, as a network store's always do.

    SQLite reads run inline and finish without suspending, so racing requests would take turns
    instead of racing; on Cosmos DB every read awaits a round trip and they interleave. The race
    tests need the interleaving to prove the registry survives it.
    """

    async def read(self, container: str, pk: str, id: str) -> Doc | None:
        found = await super().read(container, pk, id)
        await asyncio.sleep(0)
        return found

    async def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> list[Doc]:
        found = await super().read_many(container, keys)
        await asyncio.sleep(0)
        return found


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DocumentStore]:
    inner = InterleavingStore(tmp_path / "clubs.sqlite")
    yield spy(inner)
    await inner.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clubs(store: DocumentStore, clock: Clock) -> ClubsService:
    return ClubsService(store, call_idle_hours=12, clock=clock)


async def _profile(store: DocumentStore, user_id: str) -> None:
    await store.upsert(
        "users", {"id": user_id, "pk": user_id, "userId": user_id, "displayName": user_id}
    )


async def _listed(clubs: ClubsService, user_id: str) -> list[str]:
    return [c.club_id for c in await clubs.list_clubs(user_id)]


async def _can_read_call(clubs: ClubsService, user_id: str, club_id: str) -> bool:
    try:
        await clubs.get_call(user_id, club_id)
    except (errors.NotFound, errors.NotAMember) as exc:
        return isinstance(exc, errors.NoActiveCall)
    return True


# --- the call registry ------------------------------------------------------------------------


@pytest.mark.parametrize("racers", [2, 10])
async def test_members_racing_to_start_a_call_end_with_one_call(
    clubs: ClubsService, store: DocumentStore, racers: int
) -> None:
    club = await clubs.create_club("u0", "Chess", "open")
    for n in range(1, racers):
        await clubs.join(f"u{n}", club.club_id)
    spy_of(store).calls.clear()

    async def start(n: int) -> str:
        try:
            call, created = await clubs.register_call(f"u{n}", club.club_id, CALLS[n])
            assert created
            return call.group_call_id
        except errors.CallAlreadyActive as exc:
            return exc.extra["groupCallId"]

    told = await asyncio.gather(*(start(n) for n in range(racers)))
    winner = (await clubs.get_call("u0", club.club_id)).group_call_id
    assert set(told) == {winner}  # everyone was told the one registered call
    # They really raced: every racer read "no call" and tried to create one.
    assert spy_of(store).calls["create"] == racers
    assert spy_of(store).calls["read"] == racers - 1


async def test_an_idle_call_counts_as_ended_and_a_new_put_replaces_it(
    clubs: ClubsService, clock: Clock
) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.register_call("alice", club.club_id, CALLS[0])
    clock.now += timedelta(hours=11, minutes=59)
    with pytest.raises(errors.CallAlreadyActive):
        await clubs.register_call("alice", club.club_id, CALLS[1])
    clock.now += timedelta(minutes=2)
    with pytest.raises(errors.NoActiveCall):
        await clubs.get_call("alice", club.club_id)
    assert (await clubs.list_clubs("alice"))[0].active_call is None
    call, created = await clubs.register_call("alice", club.club_id, CALLS[1])
    assert created
    assert call.group_call_id == CALLS[1]


async def test_racing_replacements_of_an_idle_call_end_with_one(
    clubs: ClubsService, clock: Clock
) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.join("bob", club.club_id)
    await clubs.register_call("alice", club.club_id, CALLS[0])
    clock.now += timedelta(hours=13)

    async def start(user: str, call_id: str) -> str:
        try:
            return (await clubs.register_call(user, club.club_id, call_id))[0].group_call_id
        except errors.CallAlreadyActive as exc:
            return exc.extra["groupCallId"]

    told = await asyncio.gather(start("alice", CALLS[1]), start("bob", CALLS[2]))
    assert told[0] == told[1]
    assert told[0] in (CALLS[1], CALLS[2])


async def test_an_old_call_ended_event_never_clears_a_newer_call(clubs: ClubsService) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.register_call("alice", club.club_id, CALLS[0])
    await clubs.end_call("alice", club.club_id)
    await clubs.register_call("alice", club.club_id, CALLS[1])
    assert not await clubs.end_call_if_current(club.club_id, CALLS[0])
    assert (await clubs.get_call("alice", club.club_id)).group_call_id == CALLS[1]
    assert await clubs.end_call_if_current(club.club_id, CALLS[1].upper())
    assert not await clubs.end_call_if_current(club.club_id, CALLS[1])  # idempotent
    with pytest.raises(errors.NoActiveCall):
        await clubs.get_call("alice", club.club_id)


async def test_store_operations_of_the_call_routes(
    clubs: ClubsService, store: DocumentStore
) -> None:
    club = await clubs.create_club("alice", "Chess", "invite")
    calls = spy_of(store).calls
    calls.clear()
    with pytest.raises(errors.NotFound):
        await clubs.get_call("mallory", club.club_id)
    assert calls == {"read_many": 1}
    calls.clear()
    await clubs.register_call("alice", club.club_id, CALLS[0])
    assert calls == {"read_many": 1, "create": 1}
    calls.clear()
    await clubs.get_call("alice", club.club_id)
    assert calls == {"read_many": 1}


# --- the two membership writes ------------------------------------------------------------------


@pytest.mark.parametrize("visibility", ["open", "invite"])
@pytest.mark.parametrize("failing", ["upsert:memberships", "create:clubs"])
async def test_a_join_that_fails_part_way_never_lets_a_non_member_in(
    clubs: ClubsService, store: DocumentStore, visibility: str, failing: str
) -> None:
    club = await clubs.create_club("alice", "Chess", visibility)  # type: ignore[arg-type]
    await clubs.register_call("alice", club.club_id, CALLS[0])
    await _profile(store, "bob")
    spy_of(store).fail[failing] = errors.DependencyUnavailable("store")

    async def add() -> object:
        if visibility == "open":
            return await clubs.join("bob", club.club_id)
        return await clubs.add_member("alice", club.club_id, "bob")

    with pytest.raises(errors.DependencyUnavailable):
        await add()
    # Not a member: no call, no club in bob's list, and the place he reserved is given back.
    assert not await _can_read_call(clubs, "bob", club.club_id)
    assert await _listed(clubs, "bob") == []
    assert (await clubs.get_club("alice", club.club_id)).member_count == 1
    spy_of(store).fail.clear()
    await add()  # the retry repairs
    assert await _can_read_call(clubs, "bob", club.club_id)
    assert await _listed(clubs, "bob") == [club.club_id]
    assert (await clubs.get_club("alice", club.club_id)).member_count == 2


@pytest.mark.parametrize("visibility", ["open", "invite"])
@pytest.mark.parametrize("who_removes", ["bob", "alice"])
async def test_a_leave_that_fails_part_way_cuts_the_call_at_once(
    clubs: ClubsService, store: DocumentStore, visibility: str, who_removes: str
) -> None:
    club = await clubs.create_club("alice", "Chess", visibility)  # type: ignore[arg-type]
    await _profile(store, "bob")
    await clubs.add_member("alice", club.club_id, "bob")
    await clubs.register_call("alice", club.club_id, CALLS[0])
    spy_of(store).fail["delete:memberships"] = errors.DependencyUnavailable("store")
    with pytest.raises(errors.DependencyUnavailable):
        await clubs.remove_member(who_removes, club.club_id, "bob")
    assert not await _can_read_call(clubs, "bob", club.club_id)
    assert await _listed(clubs, "bob") == []  # the leftover index entry is not shown
    spy_of(store).fail.clear()
    await clubs.remove_member(who_removes, club.club_id, "bob")  # the retry finishes it
    assert (await store.query("memberships", "bob")).items == []


async def test_a_member_always_sees_the_clubs_they_are_in(
    clubs: ClubsService, store: DocumentStore
) -> None:
    """Whatever write of a join fails, whoever can read the call has the club in their list."""
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.register_call("alice", club.club_id, CALLS[0])
    for n, failing in enumerate(["upsert:memberships", "create:clubs", "replace:clubs"]):
        user = f"u{n}"
        spy_of(store).fail[failing] = errors.DependencyUnavailable("store")
        with pytest.raises(errors.DependencyUnavailable):
            await clubs.join(user, club.club_id)
        spy_of(store).fail.clear()
        member = await _can_read_call(clubs, user, club.club_id)
        assert member == (club.club_id in await _listed(clubs, user))


async def test_a_delete_that_fails_part_way_hides_the_club_and_a_retry_finishes(
    clubs: ClubsService, store: DocumentStore
) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.join("bob", club.club_id)
    await clubs.register_call("bob", club.club_id, CALLS[0])
    spy_of(store).fail["delete:memberships"] = errors.DependencyUnavailable("store")
    with pytest.raises(errors.DependencyUnavailable):
        await clubs.delete_club("alice", club.club_id)
    for user in ("alice", "bob"):
        with pytest.raises(errors.NotFound):
            await clubs.get_club(user, club.club_id)
        assert not await _can_read_call(clubs, user, club.club_id)
        assert await _listed(clubs, user) == []
    spy_of(store).fail.clear()
    await clubs.delete_club("alice", club.club_id)
    assert (await store.query("clubs", club.club_id)).items == []
    assert (await store.query("memberships", "bob")).items == []


# --- cap, seams -------------------------------------------------------------------------------


async def test_a_full_club_refuses_a_new_member(clubs: ClubsService, store: DocumentStore) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    doc = await store.read("clubs", club.club_id, "club")
    assert doc is not None
    await store.upsert("clubs", {**doc, "memberCount": MAX_MEMBERS})
    with pytest.raises(errors.ClubFull):
        await clubs.join("bob", club.club_id)
    assert await _listed(clubs, "bob") == []


async def test_require_member_is_not_found_for_everyone_else(clubs: ClubsService) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    assert (await clubs.require_member("alice", club.club_id)).name == "Chess"
    for user, club_id in [("bob", club.club_id), ("alice", "nope")]:
        with pytest.raises(errors.NotFound) as caught:
            await clubs.require_member(user, club_id)
        assert type(caught.value) is errors.NotFound


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[object, ...]] = []
        self.fail = fail

    def _record(self, *event: object) -> None:
        self.events.append(event)
        if self.fail:
            raise RuntimeError("observer down")

    async def member_added(self, club_id: str, user_id: str) -> None:
        self._record("added", user_id)

    async def member_removed(self, club_id: str, user_id: str) -> None:
        self._record("removed", user_id)

    async def club_deleted(self, club_id: str, member_ids: Sequence[str]) -> None:
        self._record("deleted", sorted(member_ids))

    async def call_started(
        self,
        club_id: str,
        club_name: str,
        group_call_id: str,
        started_by: str,
        member_ids: Sequence[str] | None,
    ) -> None:
        self._record("call", club_name, group_call_id, started_by, member_ids)


@pytest.mark.parametrize("fail", [False, True])
async def test_observers_are_told_and_their_failures_never_fail_the_operation(
    store: DocumentStore, clock: Clock, fail: bool, caplog: pytest.LogCaptureFixture
) -> None:
    recorder, other = Recorder(fail=fail), Recorder()
    clubs = ClubsService(store, clock=clock, observers=(recorder, other))
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.join("bob", club.club_id)
    await clubs.join("carol", club.club_id)
    await clubs.register_call("bob", club.club_id, CALLS[0])
    await clubs.remove_member("carol", club.club_id, "carol")
    await clubs.delete_club("alice", club.club_id)
    expected = [
        ("added", "alice"),
        ("added", "bob"),
        ("added", "carol"),
        ("call", "Chess", CALLS[0], "bob", None),
        ("removed", "carol"),
        ("deleted", ["alice", "bob"]),
    ]
    assert recorder.events == expected
    assert other.events == expected  # one failing observer does not silence the next
    failures = [r for r in caplog.records if r.levelno == logging.WARNING and "observer" in r.msg]
    assert len(failures) == (6 if fail else 0)
    assert [m async for m in clubs.iter_member_ids(club.club_id)] == []


async def test_iter_member_ids_pages_through_every_member(clubs: ClubsService) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    for n in range(120):
        await clubs.join(f"u{n:03}", club.club_id)
    ids = [m async for m in clubs.iter_member_ids(club.club_id)]
    assert sorted(ids) == sorted(["alice", *(f"u{n:03}" for n in range(120))])


def test_port_spy_is_the_one_in_use(store: DocumentStore) -> None:
    assert isinstance(store, PortSpy)


@pytest.mark.parametrize("who_removes", ["bob", "alice"])
async def test_the_retry_of_a_removal_that_failed_part_way_tells_the_observers(
    store: DocumentStore, clock: Clock, who_removes: str
) -> None:
    """A removal whose index delete failed told nobody (chat would keep the member seated in
    the club's thread); the retry that finishes it must tell the observers then."""
    recorder = Recorder()
    clubs = ClubsService(store, clock=clock, observers=(recorder,))
    club = await clubs.create_club("alice", "Chess", "invite")
    await _profile(store, "bob")
    await clubs.add_member("alice", club.club_id, "bob")
    spy_of(store).fail["delete:memberships"] = errors.DependencyUnavailable("store")
    with pytest.raises(errors.DependencyUnavailable):
        await clubs.remove_member(who_removes, club.club_id, "bob")
    assert ("removed", "bob") not in recorder.events
    spy_of(store).fail.clear()
    await clubs.remove_member(who_removes, club.club_id, "bob")
    assert recorder.events.count(("removed", "bob")) == 1
    # Removing someone who is not (or no longer) a member tells nobody.
    await clubs.remove_member("alice", club.club_id, "bob")
    await clubs.remove_member("alice", club.club_id, "carol")
    assert recorder.events.count(("removed", "bob")) == 1
    assert ("removed", "carol") not in recorder.events


async def test_a_call_ended_before_the_call_was_registered_clears_nothing(
    clubs: ClubsService, clock: Clock
) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    ended = clock.now
    clock.now += timedelta(minutes=1)
    await clubs.register_call("alice", club.club_id, CALLS[0])
    assert not await clubs.end_call_if_current(club.club_id, CALLS[0], ended)
    assert (await clubs.get_call("alice", club.club_id)).group_call_id == CALLS[0]
    assert await clubs.end_call_if_current(club.club_id, CALLS[0], clock.now)


async def test_a_removal_that_failed_part_way_leaves_the_member_count_right(
    clubs: ClubsService, store: DocumentStore
) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.join("bob", club.club_id)
    spy_of(store).fail["delete:memberships"] = errors.DependencyUnavailable("store")
    with pytest.raises(errors.DependencyUnavailable):
        await clubs.remove_member("alice", club.club_id, "bob")
    spy_of(store).fail.clear()
    await clubs.remove_member("alice", club.club_id, "bob")
    assert (await clubs.get_club("alice", club.club_id)).member_count == 1


@pytest.mark.parametrize("bob_leaves", ["after_the_choice", "after_the_hand_over"])
async def test_owner_and_chosen_successor_leaving_together_never_leave_a_departed_owner(
    clubs: ClubsService, store: DocumentStore, clock: Clock, bob_leaves: str
) -> None:
    club = await clubs.create_club("alice", "Chess", "open")
    for user in ("bob", "carol"):
        clock.now += timedelta(minutes=1)  # bob is the longest-standing member after alice
        await clubs.join(user, club.club_id)
    inner_query, inner_replace = store.query, store.replace
    interleaved: list[str] = []

    async def bob_leaves_now() -> None:
        if not interleaved:
            interleaved.append("bob")
            await clubs.remove_member("bob", club.club_id, "bob")

    async def query(*args: object, **kwargs: object) -> object:
        page = await inner_query(*args, **kwargs)  # type: ignore[arg-type]
        if bob_leaves == "after_the_choice" and kwargs.get("order_by") == "joinedAt":
            await bob_leaves_now()  # alice has just chosen bob as her successor
        return page

    async def replace(container: str, doc: dict[str, object], etag: str) -> object:
        saved = await inner_replace(container, doc, etag)
        if bob_leaves == "after_the_hand_over" and doc.get("ownerId") == "bob":
            await bob_leaves_now()  # the club is bob's now, and he is on his way out
        return saved

    store.query = query  # type: ignore[method-assign,assignment]
    store.replace = replace  # type: ignore[method-assign,assignment]
    await clubs.remove_member("alice", club.club_id, "alice")

    assert interleaved == ["bob"]
    view = await clubs.get_club("carol", club.club_id)
    assert view.owner_id == "carol"  # the one member left owns it
