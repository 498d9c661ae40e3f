"""FriendsService rules on a real SQLite store: requests, acceptance, blocks, call-info, limits,
half-written changes and their repair, display-name copies, erase, and invite codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from switchboard import errors
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.ports import Doc
from switchboard.services import friends as friends_module
from switchboard.services.caller import Caller
from switchboard.services.friends import FriendsService, friend_doc_id
from tests.fakes import store_down
from tests.proxies import PortSpy, spy, spy_of

ALICE = Caller("alice", "Alice")
BOB = Caller("bob", "Bob")
CAROL = Caller("carol", "Carol")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Observer:
    def __init__(self, *, broken: bool = False) -> None:
        self.ended: list[tuple[str, str]] = []
        self.broken = broken

    async def friendship_ended(self, user_id: str, other_id: str) -> None:
        self.ended.append((user_id, other_id))
        if self.broken:
            raise RuntimeError("observer down")


class FailSecondWrite(SqliteStore):
    """Once `armed`, the next write succeeds and makes the spy over it fail every later write."""

    spy: PortSpy
    armed = False

    def _after_write(self) -> None:
        if self.armed:
            self.armed = False
            for write in ("upsert", "delete", "create", "replace"):
                self.spy.fail[write] = store_down()

    async def upsert(self, container: str, doc: Doc) -> Doc:
        saved = await super().upsert(container, doc)
        self._after_write()
        return saved

    async def delete(self, container: str, pk: str, id: str, etag: str | None = None) -> bool:
        gone = await super().delete(container, pk, id, etag)
        self._after_write()
        return gone

    async def create(self, container: str, doc: Doc) -> Doc:
        saved = await super().create(container, doc)
        if container == "friends":
            self._after_write()
        return saved

    async def replace(self, container: str, doc: Doc, etag: str) -> Doc:
        saved = await super().replace(container, doc, etag)
        if container == "friends":
            self._after_write()
        return saved


class World:
    def __init__(self, tmp_path: Path, *, fail_second: bool = False) -> None:
        self.sqlite = (
            FailSecondWrite(tmp_path / "s.sqlite")
            if fail_second
            else SqliteStore(tmp_path / "s.sqlite")
        )
        self.store = spy(self.sqlite)
        self.spy = spy_of(self.store)
        if isinstance(self.sqlite, FailSecondWrite):
            self.sqlite.spy = self.spy
        self.clock = Clock()
        self.observer = Observer()
        self.service = FriendsService(
            self.store, pstn_caller_id="+18005550100", observers=[self.observer], clock=self.clock
        )

    def fail_second_write(self) -> None:
        assert isinstance(self.sqlite, FailSecondWrite)
        self.spy.fail.clear()
        self.sqlite.armed = True

    async def user(
        self, caller: Caller, *, acs: str | None = None, phone: str | None = None, verified: bool
    ) -> None:
        await self.sqlite.upsert(
            "users",
            {
                "id": caller.user_id,
                "pk": caller.user_id,
                "userId": caller.user_id,
                "displayName": caller.name,
                "displayNameSet": False,
                "communicationUserId": acs,
                "phoneNumber": phone,
                "phoneVerified": verified,
                "createdAt": "2026-11-01T00:00:00Z",
            },
        )

    async def friends(self, caller: Caller, status: Any = "accepted") -> list[tuple[str, str]]:
        page = await self.service.list_friends(caller, status, 500, None)
        return [(f.user_id, f.status) for f in page.items]

    async def make_friends(self, a: Caller, b: Caller) -> None:
        assert await self.service.request(a, b.user_id) == "outgoing"
        assert await self.service.request(b, a.user_id) == "accepted"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    await w.user(ALICE, acs="8:acs:alice", phone="+14255550101", verified=True)
    await w.user(BOB, acs="8:acs:bob", phone="+14255550102", verified=True)
    await w.user(CAROL, acs=None, phone="+14255550103", verified=False)
    yield w
    await w.sqlite.close()


async def test_request_then_accept_and_both_see_accepted(world: World) -> None:
    assert await world.service.request(ALICE, "bob") == "outgoing"
    assert await world.friends(ALICE, "outgoing") == [("bob", "outgoing")]
    assert await world.friends(BOB, "incoming") == [("alice", "incoming")]
    assert await world.friends(BOB, "accepted") == []
    assert not await world.service.are_friends("alice", "bob")
    assert await world.service.request(BOB, "alice") == "accepted"
    assert await world.friends(ALICE) == [("bob", "accepted")]
    assert await world.friends(BOB) == [("alice", "accepted")]
    assert await world.service.are_friends("alice", "bob")
    assert await world.service.are_friends("bob", "alice")
    # Repeating either PUT changes nothing.
    assert await world.service.request(ALICE, "bob") == "accepted"
    # Carol, a third user, sees none of it.
    for status in ("accepted", "incoming", "outgoing"):
        assert await world.friends(CAROL, status) == []
    assert not await world.service.are_friends("carol", "alice")


async def test_request_to_self_unknown_or_blocking_user(world: World) -> None:
    with pytest.raises(errors.InvalidInput):
        await world.service.request(ALICE, "alice")
    with pytest.raises(errors.NotFound) as unknown:
        await world.service.request(ALICE, "nobody")
    await world.service.block(BOB, "alice")
    with pytest.raises(errors.NotFound) as blocked:
        await world.service.request(ALICE, "bob")
    assert unknown.value.detail == blocked.value.detail  # blocks are not revealed
    assert await world.friends(BOB, "incoming") == []
    # Bob, who blocked, must unblock before he can ask.
    with pytest.raises(errors.UserBlocked):
        await world.service.request(BOB, "alice")
    await world.service.unblock(BOB, "alice")
    assert await world.service.request(ALICE, "bob") == "outgoing"


async def test_list_shape_order_paging_and_identity_only_for_accepted(world: World) -> None:
    await world.make_friends(ALICE, BOB)
    await world.service.request(CAROL, "alice")
    page = await world.service.list_friends(ALICE, "accepted", 100, None)
    (bob,) = page.items
    assert (bob.display_name, bob.communication_user_id, bob.since) == (
        "Bob",
        "8:acs:bob",
        "2026-11-23T12:00:00Z",
    )
    (carol,) = (await world.service.list_friends(ALICE, "incoming", 100, None)).items
    assert carol.communication_user_id is None
    (alice,) = (await world.service.list_friends(CAROL, "outgoing", 100, None)).items
    assert alice.communication_user_id is None  # pending: no identity shared
    # Many friends: ordered by display name, pages of the asked size, each one query.
    for i in range(7):
        other = Caller(f"u{i}", f"Name {6 - i}")
        await world.user(other, acs=f"8:acs:u{i}", verified=False)
        await world.make_friends(ALICE, other)
    world.spy.calls.clear()
    names: list[str] = []
    token = None
    while True:
        page = await world.service.list_friends(ALICE, "accepted", 3, token)
        names += [f.display_name for f in page.items]
        token = page.continuation
        if token is None:
            break
    assert names == ["Bob", *(f"Name {i}" for i in range(7))]
    assert world.spy.calls == {"query": 3}


async def test_identity_made_after_the_friendship_shows_up(world: World) -> None:
    await world.make_friends(ALICE, CAROL)
    (carol,) = (await world.service.list_friends(ALICE, "accepted", 100, None)).items
    assert carol.communication_user_id is None
    await world.user(CAROL, acs="8:acs:carol", verified=False)
    world.spy.calls.clear()
    (carol,) = (await world.service.list_friends(ALICE, "accepted", 100, None)).items
    assert carol.communication_user_id == "8:acs:carol"
    assert world.spy.calls == {"query": 1, "read_many": 1}  # one batched read for the page


async def test_delete_removes_both_sides_for_either_user(world: World) -> None:
    await world.make_friends(ALICE, BOB)
    await world.service.remove(BOB, "alice")
    assert await world.friends(ALICE) == []
    assert await world.friends(BOB) == []
    assert world.observer.ended == [("bob", "alice")]
    # Cancel and decline.
    await world.service.request(ALICE, "bob")
    await world.service.remove(ALICE, "bob")
    assert await world.friends(BOB, "incoming") == []
    await world.service.request(ALICE, "bob")
    await world.service.remove(BOB, "alice")
    assert await world.friends(ALICE, "outgoing") == []
    assert world.observer.ended == [("bob", "alice")]  # pending ones were no friendship
    # Carol removing alice-bob's relation is not possible: she can only address her own.
    await world.make_friends(ALICE, BOB)
    await world.service.remove(CAROL, "bob")
    assert await world.service.are_friends("alice", "bob")


async def test_block_ends_friendship_both_ways(world: World) -> None:
    await world.make_friends(ALICE, BOB)
    await world.service.block(ALICE, "bob")
    assert await world.friends(ALICE) == []
    assert await world.friends(BOB) == []
    assert world.observer.ended == [("alice", "bob")]
    with pytest.raises(errors.NotFound):
        await world.service.request(BOB, "alice")
    with pytest.raises(errors.NotFound):
        await world.service.call_info(BOB, "alice")
    # Blocking an unknown user answers like a known one; blocking yourself is refused.
    await world.service.block(ALICE, "nobody")
    with pytest.raises(errors.InvalidInput):
        await world.service.block(ALICE, "alice")
    # Both may block each other; one unblocking leaves the other's block.
    await world.service.block(BOB, "alice")
    await world.service.unblock(ALICE, "bob")
    with pytest.raises(errors.NotFound):
        await world.service.request(ALICE, "bob")


async def test_broken_observer_never_fails_the_operation(world: World) -> None:
    world.service = FriendsService(world.store, observers=[Observer(broken=True)])
    await world.make_friends(ALICE, BOB)
    await world.service.remove(ALICE, "bob")
    assert await world.friends(BOB) == []


async def test_call_info_for_accepted_friends_only(world: World) -> None:
    with pytest.raises(errors.NotFound):
        await world.service.call_info(ALICE, "bob")
    await world.service.request(ALICE, "bob")
    with pytest.raises(errors.NotFound):  # pending is not enough, either way
        await world.service.call_info(ALICE, "bob")
    with pytest.raises(errors.NotFound):
        await world.service.call_info(BOB, "alice")
    await world.service.request(BOB, "alice")
    world.spy.calls.clear()
    info = await world.service.call_info(ALICE, "bob")
    assert world.spy.calls == {"read_many": 1, "read": 1}
    assert info.communication_user_id == "8:acs:bob"
    assert info.pstn is not None
    assert (info.pstn.from_number, info.pstn.to_number) == ("+18005550100", "+14255550102")
    # Carol's number is not verified: never shared. Without PSTN_CALLER_ID: no pstn at all.
    await world.make_friends(ALICE, CAROL)
    carol = await world.service.call_info(ALICE, "carol")
    assert carol.pstn is None
    assert carol.communication_user_id is None
    bare = FriendsService(world.store)
    assert (await bare.call_info(BOB, "alice")).pstn is None
    # Carol is friends with alice only: bob's call-info is not hers.
    with pytest.raises(errors.NotFound):
        await world.service.call_info(CAROL, "bob")


async def test_operation_counts(world: World) -> None:
    world.spy.calls.clear()
    await world.service.request(ALICE, "bob")
    # New relation: both sides counted, one count query each.
    assert world.spy.calls == {"read_many": 2, "count": 2, "create": 2}
    world.spy.calls.clear()
    await world.service.request(BOB, "alice")
    assert world.spy.calls == {"read_many": 2, "replace": 2}
    world.spy.calls.clear()
    await world.service.remove(ALICE, "bob")
    assert world.spy.calls == {"read_many": 1, "delete": 2}


async def test_the_cap_costs_one_count_per_user_however_many_relations(world: World) -> None:
    # 2,500 relations on alice's side (a third of them blocks, which the cap leaves out): a new
    # request still costs one count per user, never a walk through the relations.
    for n in range(2500):
        status = "blocked" if n % 3 == 0 else "accepted"
        await world.sqlite.create(
            "friends",
            {
                "id": f"friend:x{n}",
                "pk": "alice",
                "ownerId": "alice",
                "userId": f"x{n}",
                "status": status,
                "displayName": "",
                "communicationUserId": None,
                "since": "t",
            },
        )
    world.spy.calls.clear()
    await world.service.request(ALICE, "bob")
    assert world.spy.calls == {"read_many": 2, "count": 2, "create": 2}
    assert await world.store.count("friends", "alice", where_not={"status": "blocked"}) == 1667


async def test_friend_limit(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(friends_module, "MAX_RELATIONS", 2)
    dave, erin = Caller("dave", "Dave"), Caller("erin", "Erin")
    await world.user(dave, verified=False)
    await world.user(erin, verified=False)
    await world.service.request(ALICE, "bob")
    await world.service.request(ALICE, "carol")
    with pytest.raises(errors.FriendLimit):
        await world.service.request(ALICE, "dave")
    with pytest.raises(errors.FriendLimit):  # the limit holds on the receiving side too
        await world.service.request(dave, "alice")
    # Accepting an existing request is no new relation; blocks do not count.
    await world.service.request(BOB, "alice")
    await world.service.block(erin, "alice")
    await world.service.request(erin, "dave")
    assert await world.friends(dave, "incoming") == [("erin", "incoming")]


async def test_display_name_change_reaches_friends_lists(world: World) -> None:
    await world.make_friends(ALICE, BOB)
    await world.service.request(ALICE, "carol")
    await world.service.profile_changed("alice", "Alice L.")
    (alice,) = (await world.service.list_friends(BOB, "accepted", 10, None)).items
    assert alice.display_name == "Alice L."
    (alice,) = (await world.service.list_friends(CAROL, "incoming", 10, None)).items
    assert alice.display_name == "Alice L."
    (bob,) = (await world.service.list_friends(ALICE, "accepted", 10, None)).items
    assert bob.display_name == "Bob"


async def test_erase_removes_user_from_every_list_and_their_blocks(world: World) -> None:
    await world.make_friends(ALICE, BOB)
    await world.service.request(CAROL, "alice")
    await world.service.block(ALICE, "dave")
    await world.service.create_invite(ALICE)
    await world.service.purge_user("alice")
    assert await world.friends(BOB) == []
    assert await world.friends(CAROL, "outgoing") == []
    assert (await world.sqlite.query("friends", "alice")).items == []
    assert (await world.sqlite.query("invites", "owner:alice")).items == []
    assert world.observer.ended == [("alice", "bob")]
    await world.service.purge_user("alice")  # idempotent


async def test_erase_keeps_other_users_blocks(world: World) -> None:
    await world.service.block(BOB, "alice")
    await world.service.purge_user("alice")
    with pytest.raises(errors.NotFound):
        await world.service.request(ALICE, "bob")
    blocked = await world.sqlite.read("friends", "bob", friend_doc_id("alice"))
    assert blocked is not None
    assert blocked["displayName"] == ""  # no copy of the erased user's name


# --- half-written changes ---------------------------------------------------------------------


@pytest.fixture
async def faulty(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path, fail_second=True)
    await w.user(ALICE, acs="8:acs:alice", phone="+14255550101", verified=True)
    await w.user(BOB, acs="8:acs:bob", phone="+14255550102", verified=True)
    yield w
    await w.sqlite.close()


async def _set_up_request(world: World) -> None:
    await world.sqlite.upsert("friends", _doc("alice", "bob", "outgoing"))
    await world.sqlite.upsert("friends", _doc("bob", "alice", "incoming"))


def _doc(owner: str, other: str, status: str) -> Doc:
    return {
        "id": friend_doc_id(other),
        "pk": owner,
        "ownerId": owner,
        "userId": other,
        "status": status,
        "displayName": other.title(),
        "communicationUserId": f"8:acs:{other}",
        "since": "2026-11-23T12:00:00Z",
    }


async def test_accept_failing_at_the_second_write_grants_nothing_and_retry_repairs(
    faulty: World,
) -> None:
    await _set_up_request(faulty)
    faulty.fail_second_write()
    with pytest.raises(errors.DependencyUnavailable):
        await faulty.service.request(BOB, "alice")  # the accept: alice's side, then bob's fails
    faulty.spy.fail.clear()
    # The accepter sees the request still pending; neither side can call the other.
    assert await faulty.friends(BOB, "incoming") == [("alice", "incoming")]
    assert await faulty.friends(BOB, "accepted") == []
    assert not await faulty.service.are_friends("alice", "bob")
    assert not await faulty.service.are_friends("bob", "alice")
    for caller, other in ((ALICE, "bob"), (BOB, "alice")):
        with pytest.raises(errors.NotFound):
            await faulty.service.call_info(caller, other)
    # The same request again repairs it.
    assert await faulty.service.request(BOB, "alice") == "accepted"
    assert await faulty.service.are_friends("alice", "bob")
    assert await faulty.friends(ALICE) == [("bob", "accepted")]
    assert await faulty.friends(BOB) == [("alice", "accepted")]


async def test_unfriend_failing_at_the_second_write_grants_nothing_and_retry_repairs(
    faulty: World,
) -> None:
    await faulty.sqlite.upsert("friends", _doc("alice", "bob", "accepted"))
    await faulty.sqlite.upsert("friends", _doc("bob", "alice", "accepted"))
    assert await faulty.service.are_friends("alice", "bob")
    faulty.fail_second_write()
    with pytest.raises(errors.DependencyUnavailable):
        await faulty.service.remove(ALICE, "bob")
    faulty.spy.fail.clear()
    assert not await faulty.service.are_friends("alice", "bob")
    with pytest.raises(errors.NotFound):
        await faulty.service.call_info(BOB, "alice")
    # Bob asking again is a new request, not a re-friending behind alice's back.
    assert await faulty.service.request(BOB, "alice") == "outgoing"
    await faulty.service.remove(ALICE, "bob")
    assert await faulty.friends(ALICE, "incoming") == []
    assert await faulty.friends(BOB, "outgoing") == []


async def test_request_failing_at_the_second_write_is_repaired_by_retry(faulty: World) -> None:
    faulty.fail_second_write()
    with pytest.raises(errors.DependencyUnavailable):
        await faulty.service.request(ALICE, "bob")
    faulty.spy.fail.clear()
    assert await faulty.friends(ALICE, "outgoing") == []
    assert await faulty.service.request(ALICE, "bob") == "outgoing"
    assert await faulty.friends(ALICE, "outgoing") == [("bob", "outgoing")]
    assert await faulty.friends(BOB, "incoming") == [("alice", "incoming")]


# --- invites ----------------------------------------------------------------------------------


async def test_invite_redeemed_once_makes_friends(world: World) -> None:
    invite = await world.service.create_invite(ALICE)
    assert len(invite.code) >= 22  # 128 bits, URL-safe
    assert invite.expires_at == world.clock.now + timedelta(hours=24)
    world.spy.calls.clear()
    redeemed = await world.service.redeem_invite(BOB, invite.code)
    assert world.spy.calls["read"] == 1
    assert world.spy.calls["replace"] == 1
    assert world.spy.calls["create"] == 2  # both sides, conditionally
    assert (redeemed.user_id, redeemed.display_name) == ("alice", "Alice")
    assert await world.service.are_friends("alice", "bob")
    with pytest.raises(errors.NotFound) as used:
        await world.service.redeem_invite(CAROL, invite.code)
    with pytest.raises(errors.NotFound) as unknown:
        await world.service.redeem_invite(CAROL, "A" * 22)
    with pytest.raises(errors.NotFound) as malformed:
        await world.service.redeem_invite(CAROL, "short")
    assert used.value.detail == unknown.value.detail == malformed.value.detail
    # The winner repeating the call is fine (it finishes a half-done acceptance).
    assert (await world.service.redeem_invite(BOB, invite.code)).user_id == "alice"


async def test_invite_expired_own_or_blocked(world: World) -> None:
    own = await world.service.create_invite(ALICE)
    with pytest.raises(errors.OwnInvite):
        await world.service.redeem_invite(ALICE, own.code)
    world.clock.now += timedelta(hours=24)
    with pytest.raises(errors.NotFound) as expired:
        await world.service.redeem_invite(BOB, own.code)
    fresh = await world.service.create_invite(ALICE)
    await world.service.block(ALICE, "bob")
    with pytest.raises(errors.NotFound) as blocked:
        await world.service.redeem_invite(BOB, fresh.code)
    assert expired.value.detail == blocked.value.detail
    assert not await world.service.are_friends("alice", "bob")


async def test_concurrent_redeems_have_exactly_one_winner(world: World) -> None:
    invite = await world.service.create_invite(ALICE)
    racers = [Caller(f"r{i}", f"Racer {i}") for i in range(8)]
    for racer in racers:
        await world.user(racer, verified=False)
    results = await asyncio.gather(
        *(world.service.redeem_invite(r, invite.code) for r in racers), return_exceptions=True
    )
    winners = [r for r, res in zip(racers, results, strict=True) if not isinstance(res, Exception)]
    assert len(winners) == 1
    assert all(isinstance(res, errors.NotFound) for res in results if isinstance(res, Exception))
    assert await world.friends(ALICE) == [(winners[0].user_id, "accepted")]


async def test_at_most_twenty_live_codes(world: World) -> None:
    codes = [await world.service.create_invite(ALICE) for _ in range(20)]
    with pytest.raises(errors.InviteLimit):
        await world.service.create_invite(ALICE)
    await world.service.create_invite(BOB)  # another user's limit is their own
    await world.service.redeem_invite(BOB, codes[0].code)  # a used code frees its slot
    await world.service.create_invite(ALICE)
    with pytest.raises(errors.InviteLimit):
        await world.service.create_invite(ALICE)
    world.clock.now += timedelta(hours=25)  # expired codes free theirs
    await world.service.create_invite(ALICE)


async def test_a_spent_code_cannot_refriend_after_an_unfriend(world: World) -> None:
    invite = await world.service.create_invite(ALICE)
    await world.service.redeem_invite(BOB, invite.code)
    await world.service.remove(ALICE, "bob")  # alice ends it
    # The code was one-time: bob repeating it must not make them friends again.
    with pytest.raises(errors.NotFound):
        await world.service.redeem_invite(BOB, invite.code)
    assert not await world.service.are_friends("alice", "bob")
    assert await world.friends(ALICE) == []


async def test_redeem_failing_at_the_second_write_is_repaired_by_retry(faulty: World) -> None:
    invite = await faulty.service.create_invite(ALICE)
    faulty.fail_second_write()
    with pytest.raises(errors.DependencyUnavailable):
        await faulty.service.redeem_invite(BOB, invite.code)
    faulty.spy.fail.clear()
    assert not await faulty.service.are_friends("alice", "bob")
    assert (await faulty.service.redeem_invite(BOB, invite.code)).user_id == "alice"
    assert await faulty.service.are_friends("alice", "bob")


class CancelDuringAccept(SqliteStore):
    """Once `armed`, the next ReadMany of friends is followed by the requester cancelling (both
    sides deleted) before the accepter writes: the accepter acts on a stale view."""

    armed = False

    async def read_many(self, container: str, keys: Any) -> list[Doc]:
        found = await super().read_many(container, keys)
        if self.armed and container == "friends":
            self.armed = False
            await super().delete("friends", "bob", friend_doc_id("alice"))
            await super().delete("friends", "alice", friend_doc_id("bob"))
        return found


async def test_an_accept_racing_a_cancel_does_not_make_friends(tmp_path: Path) -> None:
    store = CancelDuringAccept(tmp_path / "s.sqlite")
    service = FriendsService(store)
    for caller in (ALICE, BOB):
        await store.upsert(
            "users",
            {"id": caller.user_id, "pk": caller.user_id, "displayName": caller.name},
        )
    assert await service.request(ALICE, "bob") == "outgoing"
    store.armed = True
    # bob read alice's request, then alice cancelled it: bob's accept must not resurrect it.
    await service.request(BOB, "alice")
    assert not await service.are_friends("alice", "bob")
    accepted = await service.list_friends(ALICE, "accepted", 10, None)
    assert accepted.items == []
    await store.close()


class BlockDuringRedeem(SqliteStore):
    """Once `armed`, the next ReadMany of users is followed by alice blocking bob."""

    armed = False

    async def read_many(self, container: str, keys: Any) -> list[Doc]:
        found = await super().read_many(container, keys)
        if self.armed and container == "users":
            self.armed = False
            blocked = {**_doc("alice", "bob", "blocked"), "displayName": ""}
            await super().upsert("friends", blocked)
        return found


async def test_a_redeem_racing_a_block_does_not_overwrite_it(tmp_path: Path) -> None:
    store = BlockDuringRedeem(tmp_path / "s.sqlite")
    service = FriendsService(store)
    for caller in (ALICE, BOB):
        await store.upsert(
            "users",
            {"id": caller.user_id, "pk": caller.user_id, "displayName": caller.name},
        )
    invite = await service.create_invite(ALICE)
    store.armed = True
    # bob checked for blocks, then alice blocked him: his redeem must not replace her block.
    with pytest.raises(errors.NotFound):
        await service.redeem_invite(BOB, invite.code)
    assert not await service.are_friends("alice", "bob")
    mine = await store.read("friends", "alice", friend_doc_id("bob"))
    assert mine is not None
    assert mine["status"] == "blocked"
    assert (await service.list_friends(BOB, "accepted", 10, None)).items == []
    await store.close()
