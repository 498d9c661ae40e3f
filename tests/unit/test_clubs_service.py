"""The clubs service on the real SQLite store, spied, with the runtime's reaction layer: the
call registry's races and idle rule, invitations (consent), the cost of each request at the
store port (pinned), every reconciler write failed and repaired by a later drain, a drifted
count that never refuses a join, an O(1) delete of a big club, and the owner leaving while
their successor leaves too. After each scenario the clubs' integrity check must find nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.ports import Doc, DocumentStore
from switchboard.runtime import Runtime, _FriendsLater
from switchboard.services import clubs as clubs_module
from switchboard.services.caller import Caller
from switchboard.services.clubs import ClubsService, member_doc_id
from tests.conftest import make_runtime
from tests.integrity.clubs import check
from tests.proxies import spy, spy_of

CALLS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(20)]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

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
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def rt(tmp_path: Path, clock: Clock) -> AsyncIterator[Runtime]:
    runtime = make_runtime(tmp_path, store=spy(InterleavingStore(tmp_path / "clubs.sqlite")))
    runtime.__dict__["clubs"] = ClubsService(
        runtime.adapters.store,
        work=runtime.work,
        profiles=runtime.identity,
        ensure_profile=runtime._ensure_profile,
        relations=_FriendsLater(runtime),
        clock=clock,
    )
    yield runtime
    await runtime.close()


@pytest.fixture
def clubs(rt: Runtime) -> ClubsService:
    return rt.clubs


@pytest.fixture
def store(rt: Runtime) -> DocumentStore:
    return rt.adapters.store


async def users(rt: Runtime, *names: str) -> None:
    """Signed-in users (profiles, as after their first request)."""
    for name in names:
        await rt.identity.ensure_profile(Caller(name, name.title()))


async def settled(rt: Runtime) -> None:
    """Drain the work, then the integrity check must find nothing."""
    await rt.reactor.drain()
    assert await check(rt.adapters.store, rt.chat_provider) == []


async def member(rt: Runtime, club_id: str, owner: str, user: str) -> None:
    """`user` in the club by invitation and acceptance."""
    await rt.clubs.invite(owner, club_id, user)
    await rt.clubs.join(user, club_id)


# --- the call registry ------------------------------------------------------------------------


@pytest.mark.parametrize("racers", [2, 10])
async def test_members_racing_to_start_a_call_end_with_one_call(
    rt: Runtime, clubs: ClubsService, store: DocumentStore, racers: int
) -> None:
    await users(rt, *(f"u{n}" for n in range(racers)))
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
    await settled(rt)


async def test_an_idle_call_counts_as_ended_and_a_new_put_replaces_it(
    rt: Runtime, clubs: ClubsService, clock: Clock
) -> None:
    await users(rt, "alice")
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


async def test_an_old_call_ended_event_never_clears_a_newer_call(
    rt: Runtime, clubs: ClubsService
) -> None:
    await users(rt, "alice")
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


# --- the cost of each request, pinned -------------------------------------------------------------


async def test_store_operations_of_every_club_request(
    rt: Runtime, clubs: ClubsService, store: DocumentStore, clock: Clock
) -> None:
    """O(1) or O(page) whatever the club's size: these counts hold for 3 members as for 10,000.
    Every change records its work before (`upsert` due after the grace) and marks it due after
    (`upsert` again): 2 per work item."""
    await users(rt, "alice", "bob", "carol", "dan")
    club = await clubs.create_club("alice", "Chess", "invite")
    await member(rt, club.club_id, "alice", "carol")
    await rt.reactor.drain()
    calls = spy_of(store).calls

    calls.clear()
    with pytest.raises(errors.NotFound):
        await clubs.get_call("mallory", club.club_id)
    assert calls == {"read_many": 1}

    calls.clear()  # invite: snapshot, the invitee's profile, blocked?, the cap, 2 writes
    await clubs.invite("alice", club.club_id, "bob")
    assert calls == {"read_many": 2, "read": 1, "query": 1, "upsert": 2 + 4}

    calls.clear()  # accept: snapshot, own profile, index + member record, invitation gone
    clock.now += timedelta(minutes=1)
    await clubs.join("bob", club.club_id)
    assert calls == {"read_many": 2, "upsert": 1 + 4, "create": 1, "delete": 2}

    calls.clear()  # a page of members: snapshot, the page, names, friendships
    page = await clubs.list_members("bob", club.club_id, 50, None)
    assert [m.user_id for m in page.items] == ["alice", "carol", "bob"]
    assert calls == {"read_many": 3, "query": 1}

    calls.clear()  # leave: snapshot, member record, index entry
    await clubs.remove_member("bob", club.club_id, "bob")
    assert calls == {"read_many": 1, "delete": 2, "upsert": 4}

    calls.clear()
    await clubs.register_call("carol", club.club_id, CALLS[0])
    assert calls == {"read_many": 1, "create": 1, "upsert": 2}
    calls.clear()
    await clubs.get_call("carol", club.club_id)
    assert calls == {"read_many": 1}

    calls.clear()  # delete: snapshot, the mark (read + replace); the purge is the reconciler's
    await clubs.delete_club("alice", club.club_id)
    assert calls == {"read_many": 1, "read": 1, "replace": 1, "upsert": 2}
    await settled(rt)


async def test_deleting_a_big_club_costs_the_request_the_same_as_a_small_one(
    rt: Runtime, clubs: ClubsService, store: DocumentStore
) -> None:
    await users(rt, "alice")
    club = await clubs.create_club("alice", "Big", "open")
    names = [f"m{n:04d}" for n in range(1200)]
    for name in names:  # written as the join route writes them, without 1,200 requests
        await store.upsert("users", {"id": name, "pk": name, "userId": name, "displayName": name})
        await store.upsert(
            "memberships",
            {
                "id": club.club_id,
                "pk": name,
                "clubId": club.club_id,
                "userId": name,
                "clubName": "Big",
                "joinedAt": "2026-01-01T00:00:00+00:00",
            },
        )
        await store.upsert(
            "clubs",
            {
                "id": member_doc_id(name),
                "pk": club.club_id,
                "type": "member",
                "clubId": club.club_id,
                "userId": name,
                "joinedAt": "2026-01-01T00:00:00+00:00",
                "generation": None,
            },
        )
    await settled(rt)
    assert (await clubs.get_club("alice", club.club_id)).member_count == 1201
    spy_of(store).calls.clear()
    await clubs.delete_club("alice", club.club_id)
    assert spy_of(store).calls == {"read_many": 1, "read": 1, "replace": 1, "upsert": 2}
    with pytest.raises(errors.NotFound):
        await clubs.get_club("m0001", club.club_id)
    assert await clubs.list_clubs("m0001") == []  # seen at once, though the purge is pending
    await settled(rt)  # the purge ran in several runs of a few pages
    assert (await store.query("clubs", club.club_id)).items == []


# --- invitations (consent) ----------------------------------------------------------------------


async def test_an_invited_user_is_not_a_member_until_they_accept(
    rt: Runtime, clubs: ClubsService
) -> None:
    await users(rt, "alice", "bob", "carol")
    club = await clubs.create_club("alice", "Chess", "invite")
    await clubs.register_call("alice", club.club_id, CALLS[0])
    invited = await clubs.invite("alice", club.club_id, "bob")
    assert (invited.user_id, invited.role, invited.status) == ("bob", "member", "invited")
    assert (await clubs.invite("alice", club.club_id, "bob")).status == "invited"  # again
    await settled(rt)
    # Not a member: no call, no club in his list, not counted, not listed to members.
    with pytest.raises(errors.NotFound):
        await clubs.get_call("bob", club.club_id)
    assert await clubs.list_clubs("bob") == []
    assert (await clubs.get_club("alice", club.club_id)).member_count == 1
    [invitation] = await clubs.list_invitations("bob")
    assert (invitation.club_id, invitation.name, invitation.owner_id) == (
        club.club_id,
        "Chess",
        "alice",
    )
    assert await clubs.list_invitations("carol") == []
    # The owner sees the invitee after the members, marked invited.
    owner_view: list[tuple[str, str]] = []
    token: str | None = None
    while True:
        page = await clubs.list_members("alice", club.club_id, 50, token)
        owner_view += [(m.user_id, m.status) for m in page.items]
        token = page.continuation
        if token is None:
            break
    assert owner_view == [("alice", "member"), ("bob", "invited")]

    await clubs.join("bob", club.club_id)  # accepts
    assert (await clubs.get_call("bob", club.club_id)).group_call_id == CALLS[0]
    assert await clubs.list_invitations("bob") == []
    assert (await clubs.invite("alice", club.club_id, "bob")).status == "member"
    await settled(rt)
    assert (await clubs.get_club("alice", club.club_id)).member_count == 2


async def test_a_member_page_token_of_the_invitees_is_the_owners_only(
    rt: Runtime, clubs: ClubsService
) -> None:
    await users(rt, "alice", "bob", "carol")
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.join("carol", club.club_id)
    await clubs.invite("alice", club.club_id, "bob")
    member_view = await clubs.list_members("carol", club.club_id, 50, None)
    assert [(m.user_id, m.status) for m in member_view.items] == [
        ("alice", "member"),
        ("carol", "member"),
    ]
    assert member_view.continuation is None
    with pytest.raises(errors.InvalidInput):
        await clubs.list_members("carol", club.club_id, 50, "i:")


async def test_declining_and_withdrawing_an_invitation(rt: Runtime, clubs: ClubsService) -> None:
    await users(rt, "alice", "bob")
    club = await clubs.create_club("alice", "Chess", "invite")
    await clubs.invite("alice", club.club_id, "bob")
    await clubs.remove_member("bob", club.club_id, "bob")  # declines
    assert await clubs.list_invitations("bob") == []
    with pytest.raises(errors.NotFound):
        await clubs.join("bob", club.club_id)
    await clubs.invite("alice", club.club_id, "bob")
    await clubs.remove_member("alice", club.club_id, "bob")  # withdrawn
    with pytest.raises(errors.NotFound):
        await clubs.join("bob", club.club_id)
    await settled(rt)


async def test_unknown_erased_and_blocking_users_get_one_answer(
    rt: Runtime, clubs: ClubsService
) -> None:
    await users(rt, "alice", "bob", "blocker")
    club = await clubs.create_club("alice", "Chess", "invite")
    await rt.friends.block(Caller("blocker"), "alice")
    answers = []
    for target in ("nobody", "blocker"):
        with pytest.raises(errors.NotFound) as caught:
            await clubs.invite("alice", club.club_id, target)
        answers.append((type(caught.value), caught.value.detail))
    assert answers[0] == answers[1]
    await settled(rt)


async def test_invitations_expire_and_are_capped(
    rt: Runtime, clubs: ClubsService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clubs_module, "MAX_INVITATIONS", 2)
    await users(rt, "alice", "bob", "carol", "dan")
    club = await clubs.create_club("alice", "Chess", "invite")
    await clubs.invite("alice", club.club_id, "bob")
    await clubs.invite("alice", club.club_id, "carol")
    with pytest.raises(errors.InviteLimit):
        await clubs.invite("alice", club.club_id, "dan")
    clock.now += timedelta(days=31)
    assert await clubs.list_invitations("bob") == []
    with pytest.raises(errors.NotFound):
        await clubs.join("bob", club.club_id)
    await clubs.invite("alice", club.club_id, "dan")  # expired ones free the places
    await rt.reactor.drain()
    await rt.work.now(clubs_module.KIND_CLUB, club.club_id)
    await settled(rt)  # the club's reconciler removed the expired ones and their copies
    assert {d["id"] for d in (await rt.adapters.store.query("clubs", club.club_id)).items} == {
        "club",
        "member:alice",
        "invite:dan",
    }


# --- counts are copies ----------------------------------------------------------------------------


async def test_a_drifted_count_never_refuses_a_join_and_the_cap_counts_records(
    rt: Runtime, clubs: ClubsService, store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await users(rt, "alice", "bob", "carol", "dan")
    club = await clubs.create_club("alice", "Chess", "open")
    raw = await store.read("clubs", club.club_id, "club")
    assert raw is not None
    await store.replace("clubs", {**raw, "memberCount": clubs_module.MAX_MEMBERS}, raw["_etag"])
    await clubs.join("bob", club.club_id)  # the count says full; the records say 1
    await settled(rt)
    assert (await clubs.get_club("bob", club.club_id)).member_count == 2
    monkeypatch.setattr(clubs_module, "MAX_MEMBERS", 3)
    await clubs.join("carol", club.club_id)
    await rt.reactor.drain()
    with pytest.raises(errors.ClubFull):
        await clubs.join("dan", club.club_id)
    await settled(rt)


# --- reconciler writes fail, a later drain repairs --------------------------------------------


@pytest.mark.parametrize(
    "failing",
    [
        "upsert:memberships",
        "delete:memberships",
        "delete:clubs",
        "replace:clubs",
        "read_many:users",
        "query:clubs",
    ],
)
async def test_every_reconciler_write_can_fail_and_a_later_drain_repairs(
    rt: Runtime, clubs: ClubsService, store: DocumentStore, failing: str
) -> None:
    """The requests succeed; then each reconciler write of a kind fails while the work drains
    (retried, parked); with the store back, the parked work re-armed and drained, every
    invariant holds."""
    await users(rt, "alice", "bob", "carol", "dan")
    club = await clubs.create_club("alice", "Chess", "open")
    other = await clubs.create_club("dan", "Go", "open")
    await clubs.join("bob", club.club_id)
    await clubs.join("carol", club.club_id)
    await clubs.invite("alice", club.club_id, "dan")
    await clubs.remove_member("carol", club.club_id, "carol")
    await clubs.remove_member("alice", club.club_id, "alice")  # the owner leaves
    await clubs.join("bob", other.club_id)
    await clubs.delete_club("dan", other.club_id)
    spy_of(store).fail[failing] = errors.DependencyUnavailable("store")
    await rt.reactor.drain()
    spy_of(store).fail.clear()
    await rt.reactor.rearm_parked()
    await settled(rt)
    view = await clubs.get_club("bob", club.club_id)
    assert (view.owner_id, view.member_count) == ("bob", 1)


async def test_a_leave_whose_chat_removal_failed_is_repaired(rt: Runtime) -> None:
    """Bob's leave answers at once; ACS refuses his removal for a while; the club's chat
    reconciler, retried, takes him out of the thread (issue 19: the retry answered 403)."""
    for name in ("alice", "bob"):
        await rt.identity.issue_token(Caller(name), None, None)  # ACS identities
    club = await rt.clubs.create_club("alice", "Chess", "open")
    await rt.clubs.join("bob", club.club_id)
    await settled(rt)
    chat = spy(rt.chat_provider)
    rt.__dict__["chat_provider"] = chat
    rt.chat._chat = chat
    spy_of(chat).fail["remove_participant"] = errors.DependencyUnavailable("chat")
    await rt.clubs.remove_member("bob", club.club_id, "bob")
    await rt.reactor.drain()
    assert await check(rt.adapters.store, chat) != []  # bob still holds a seat
    spy_of(chat).fail.clear()
    await rt.reactor.rearm_parked()
    await settled(rt)


# --- the owner leaving ------------------------------------------------------------------------


@pytest.mark.parametrize("bob_leaves", ["after_the_choice", "after_the_hand_over"])
async def test_owner_and_chosen_successor_leaving_together_never_leave_a_departed_owner(
    rt: Runtime, clubs: ClubsService, store: DocumentStore, clock: Clock, bob_leaves: str
) -> None:
    await users(rt, "alice", "bob", "carol")
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
    store.query, store.replace = inner_query, inner_replace  # type: ignore[method-assign]

    assert interleaved == ["bob"]
    await settled(rt)
    view = await clubs.get_club("carol", club.club_id)
    assert (view.owner_id, view.member_count) == ("carol", 1)  # the one member left owns it


async def test_the_last_member_leaving_deletes_the_club(
    rt: Runtime, clubs: ClubsService, store: DocumentStore
) -> None:
    await users(rt, "alice")
    club = await clubs.create_club("alice", "Chess", "invite")
    await clubs.remove_member("alice", club.club_id, "alice")
    with pytest.raises(errors.NotFound):
        await clubs.get_club("alice", club.club_id)
    await settled(rt)
    assert (await store.query("clubs", club.club_id)).items == []


async def test_require_member_is_not_found_for_everyone_else(
    rt: Runtime, clubs: ClubsService
) -> None:
    await users(rt, "alice", "bob")
    club = await clubs.create_club("alice", "Chess", "open")
    assert (await clubs.require_member("alice", club.club_id)).club_id == club.club_id
    for user in ("bob", "mallory"):
        with pytest.raises(errors.NotFound):
            await clubs.require_member(user, club.club_id)
    with pytest.raises(errors.NotFound):
        await clubs.require_member("alice", "0" * 32)


async def test_the_integrity_check_finds_each_kind_of_drift(
    rt: Runtime, clubs: ClubsService, store: DocumentStore
) -> None:
    """The check can fail: each drift written by hand is named."""
    await users(rt, "alice", "bob")
    club = await clubs.create_club("alice", "Chess", "open")
    await clubs.join("bob", club.club_id)
    await settled(rt)
    raw = await store.read("clubs", club.club_id, "club")
    assert raw is not None
    await store.replace("clubs", {**raw, "memberCount": 67}, raw["_etag"])
    await store.delete("memberships", "bob", club.club_id)
    await store.upsert(
        "memberships",
        {"id": "0" * 32, "pk": "bob", "clubId": "0" * 32, "userId": "bob", "joinedAt": "x"},
    )
    await store.delete("users", "bob", "bob")
    found = "\n".join(await check(store, rt.chat_provider))
    assert "memberCount 67 for 2 members" in found
    assert "member bob has no profile" in found
    assert f"membership bob in {club.club_id}: no copy" in found
    assert "copy without member record" in found


async def test_erase_leaves_no_record_naming_the_user_either_way(
    rt: Runtime, clubs: ClubsService
) -> None:
    """An erased owner: their club passes to the longest-standing member, the invitations they
    sent go, the call they started no longer names them. An erased invitee: their invitation
    goes. Nothing of either is left (the integrity check)."""
    await users(rt, "alice", "bob", "carol", "dan")
    club = await clubs.create_club("alice", "Chess", "invite")
    await member(rt, club.club_id, "alice", "bob")
    await clubs.invite("alice", club.club_id, "carol")
    other = await clubs.create_club("bob", "Go", "invite")
    await clubs.invite("bob", other.club_id, "dan")
    await clubs.register_call("alice", club.club_id, CALLS[0])
    await settled(rt)
    await rt.identity.erase(Caller("alice"))
    await rt.identity.erase(Caller("dan"))
    await settled(rt)
    view = await clubs.get_club("bob", club.club_id)
    assert (view.owner_id, view.member_count) == ("bob", 1)
    call = await clubs.get_call("bob", club.club_id)
    assert (call.group_call_id, call.started_by) == (CALLS[0], None)
    assert await clubs.list_invitations("carol") == []  # alice's invitation went with her
    assert await clubs.list_invitations("dan") == []
    assert (await rt.adapters.store.query("memberships", "dan")).items == []
    # A user of the same id signing in again is someone new: invited afresh, not a member.
    await users(rt, "alice")
    with pytest.raises(errors.NotFound):
        await clubs.get_club("alice", club.club_id)
