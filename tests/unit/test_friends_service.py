"""FriendsService rules on a real SQLite store: requests, acceptance, blocks, call-info, limits,
the pair document as the one truth and its reconciler (sides, erased users, the direct thread),
names read through Profiles, erase by fan-out, and invite codes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from switchboard import errors
from switchboard.adapters.chat_local import LocalChatProvider
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.ports import Doc
from switchboard.services import friends as friends_module
from switchboard.services.caller import Caller
from switchboard.services.friends import friend_doc_id, pair_pk
from tests.fakes import store_down
from tests.integrity import friends as integrity
from tests.proxies import spy, spy_of
from tests.social import Social

ALICE = Caller("alice", "Alice")
BOB = Caller("bob", "Bob")
CAROL = Caller("carol", "Carol")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.sqlite = SqliteStore(tmp_path / "s.sqlite")
        self.store = spy(self.sqlite)
        self.spy = spy_of(self.store)
        self.clock = Clock()
        self.local_chat = LocalChatProvider(tmp_path)
        self.chat = spy(self.local_chat)
        self.social = Social(
            self.store,
            tmp_path,
            chat=self.chat,
            pstn_caller_id="+18005550100",
            clock=self.clock,
        )
        self.service = self.social.friends
        self.reactor = self.social.reactor

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
                "generation": f"g1-{caller.user_id}",
            },
        )

    async def friends(self, caller: Caller, status: Any = "accepted") -> list[tuple[str, str]]:
        page = await self.service.list_friends(caller, status, 500, None)
        return [(f.user_id, f.status) for f in page.items]

    async def make_friends(self, a: Caller, b: Caller) -> None:
        assert await self.service.request(a, b.user_id) == "outgoing"
        assert await self.service.request(b, a.user_id) == "accepted"

    async def settle(self) -> None:
        """Drain the work, then the integrity check must find nothing."""
        await self.reactor.drain()
        assert await integrity.check(self.sqlite, self.local_chat) == []


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
    await world.settle()


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
    await world.settle()


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
    # Many friends: newest first, pages of the asked size, each one query and one batched
    # read of the page's profiles.
    for i in range(7):
        world.clock.now += timedelta(minutes=1)
        other = Caller(f"u{i}", f"Name {i}")
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
    assert names == [*(f"Name {i}" for i in reversed(range(7))), "Bob"]
    assert world.spy.calls == {"query": 3, "read_many": 3}


async def test_names_and_identities_are_read_not_copied(world: World) -> None:
    """A rename or a new ACS identity shows in friends' lists at once, and costs friends
    nothing: there is no copy to update (PATCH /api/me was 2 operations per friend)."""
    await world.make_friends(ALICE, CAROL)
    (carol,) = (await world.service.list_friends(ALICE, "accepted", 100, None)).items
    assert (carol.display_name, carol.communication_user_id) == ("Carol", None)
    await world.user(Caller("carol", "Carol L."), acs="8:acs:carol", verified=False)
    world.spy.calls.clear()
    (carol,) = (await world.service.list_friends(ALICE, "accepted", 100, None)).items
    assert (carol.display_name, carol.communication_user_id) == ("Carol L.", "8:acs:carol")
    assert world.spy.calls == {"query": 1, "read_many": 1}
    assert "displayName" not in (await world.sqlite.read("friends", "alice", "friend:carol") or {})


async def test_delete_removes_both_sides_for_either_user(world: World) -> None:
    await world.make_friends(ALICE, BOB)
    await world.service.remove(BOB, "alice")
    assert await world.friends(ALICE) == []
    assert await world.friends(BOB) == []
    # Cancel and decline.
    await world.service.request(ALICE, "bob")
    await world.service.remove(ALICE, "bob")
    assert await world.friends(BOB, "incoming") == []
    await world.service.request(ALICE, "bob")
    await world.service.remove(BOB, "alice")
    assert await world.friends(ALICE, "outgoing") == []
    # Nothing is left of the pair: no pair document, no side.
    assert await world.sqlite.read("friends", pair_pk("alice", "bob"), "pair") is None
    # Carol removing alice-bob's relation is not possible: she can only address her own.
    await world.make_friends(ALICE, BOB)
    await world.service.remove(CAROL, "bob")
    assert await world.service.are_friends("alice", "bob")
    await world.settle()


async def test_block_ends_friendship_both_ways(world: World) -> None:
    await world.make_friends(ALICE, BOB)
    await world.service.block(ALICE, "bob")
    assert await world.friends(ALICE) == []
    assert await world.friends(BOB) == []
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
    await world.settle()


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
    world.service._pstn_caller_id = None
    assert (await world.service.call_info(BOB, "alice")).pstn is None
    # Carol is friends with alice only: bob's call-info is not hers.
    with pytest.raises(errors.NotFound):
        await world.service.call_info(CAROL, "bob")


async def test_operation_counts(world: World) -> None:
    """Store operations per change, pinned: O(1) whatever the number of friends."""
    world.spy.calls.clear()
    await world.service.request(ALICE, "bob")
    # Profiles (1 read_many), the pair and both sides (1 read_many), the new relation counted on
    # both sides (2 count queries each: relations less the hidden sides of blocks), the pair
    # read and created, both sides written, the `pair` work before and after (2 upserts).
    assert world.spy.calls == {"read_many": 2, "count": 4, "read": 1, "create": 1, "upsert": 4}
    world.spy.calls.clear()
    await world.service.request(BOB, "alice")  # the accept
    assert world.spy.calls == {"read_many": 2, "read": 1, "replace": 1, "upsert": 4}
    world.spy.calls.clear()
    await world.service.block(ALICE, "bob")
    # Bob's generation (1 read_many: his erase removes the block), the pair replaced, alice's
    # side now blocked, bob's hidden `blockedBy` (never listed; his erase finds the pair by it).
    assert world.spy.calls == {"read_many": 2, "read": 1, "replace": 1, "upsert": 4}
    world.spy.calls.clear()
    await world.service.unblock(ALICE, "bob")
    # The pair (now empty) and both sides deleted.
    assert world.spy.calls == {"read_many": 1, "read": 1, "delete": 3, "upsert": 2}


async def test_the_cap_costs_two_counts_per_user_however_many_relations(world: World) -> None:
    # 2,500 relations on alice's side (a third of them blocks, which the cap leaves out): a new
    # request still costs two counts per user, never a walk through the relations.
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
    assert world.spy.calls == {"read_many": 2, "count": 4, "read": 1, "create": 1, "upsert": 4}
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
    await world.settle()


# --- erase: the pair reconciler drops an erased user's part -----------------------------------


async def test_erase_removes_user_from_every_list_and_their_blocks(world: World) -> None:
    await world.make_friends(ALICE, BOB)
    opened = await world.social.chat.open_direct_thread("alice", "bob")
    await world.service.request(CAROL, "alice")
    await world.service.block(ALICE, "dave")
    await world.service.create_invite(ALICE)
    await world.social.erase("alice")
    assert await world.friends(BOB) == []
    assert await world.friends(CAROL, "outgoing") == []
    assert (await world.sqlite.query("friends", "alice")).items == []
    assert (await world.sqlite.query("invites", "owner:alice")).items == []
    assert opened.thread_id is not None
    assert not world.local_chat.exists(opened.thread_id)
    for pair in (("alice", "bob"), ("alice", "carol"), ("alice", "dave")):
        assert await world.sqlite.read("friends", pair_pk(*pair), "pair") is None
    assert await integrity.check(world.sqlite, world.local_chat) == []
    await world.social.erase("alice")  # idempotent


async def test_erase_removes_other_users_blocks_of_the_user(world: World) -> None:
    """Erase is final: not even a block names the erased user afterwards. A block of an id that
    has never signed in stays (it works before its user exists)."""
    await world.service.block(BOB, "alice")
    await world.service.block(BOB, "nobody-yet")
    assert await world.friends(ALICE, "incoming") == []  # the block is not revealed
    await world.social.erase("alice")
    assert await world.sqlite.read("friends", "bob", friend_doc_id("alice")) is None
    assert await world.sqlite.read("friends", pair_pk("alice", "bob"), "pair") is None
    kept = await world.sqlite.read("friends", "bob", friend_doc_id("nobody-yet"))
    assert kept is not None
    assert kept["status"] == "blocked"
    # When that id signs in, the block holds.
    await world.user(Caller("nobody-yet", "Newcomer"), verified=False)
    with pytest.raises(errors.NotFound):
        await world.service.request(Caller("nobody-yet"), "bob")
    await world.settle()


async def test_a_request_to_a_user_who_then_signs_up_again_is_dropped(world: World) -> None:
    """A pair recorded for one generation of a user does not hold for the next one."""
    await world.service.request(ALICE, "bob")
    await world.sqlite.delete("users", "bob", "bob")
    await world.sqlite.upsert(
        "users", {"id": "bob", "pk": "bob", "displayName": "New Bob", "generation": "g2-bob"}
    )
    await world.service.reconcile_pair("alice\nbob")
    assert await world.friends(ALICE, "outgoing") == []
    assert await world.friends(BOB, "incoming") == []
    await world.settle()


# --- the pair reconciler under failures --------------------------------------------------------

FAILURES = [
    "upsert:friends",
    "delete:friends",
    "replace:friends",
    "read_many:friends",
    "create:system",
    "replace:system",
    "delete:system",
    "upsert:threads",
    "delete:threads",
]


@pytest.mark.parametrize("failing", FAILURES)
async def test_each_write_of_the_pair_reconciler_failing_then_drained(
    world: World, failing: str
) -> None:
    """A change made in the request stands; the reconciler's writes fail (sides, pair, ledger,
    listings), it is retried and parked; once the store answers, a drain converges."""
    await world.make_friends(ALICE, BOB)
    await world.social.chat.open_direct_thread("alice", "bob")
    await world.settle()
    await world.make_friends(ALICE, CAROL)
    world.spy.fail[failing] = store_down()
    with contextlib.suppress(errors.DependencyUnavailable):
        await world.service.block(BOB, "alice")  # the request may fail too: retried below
    with contextlib.suppress(errors.DependencyUnavailable):
        await world.service.reconcile_pair("alice\ncarol")
    await world.reactor.drain()  # fails and parks, never loops forever
    world.spy.fail.clear()
    await world.reactor.rearm_parked()
    with contextlib.suppress(errors.DependencyUnavailable):
        await world.service.block(BOB, "alice")
    await world.settle()
    assert not await world.service.are_friends("alice", "bob")
    assert (await world.social.chat.list_threads("alice", None)).items == []


@pytest.mark.parametrize("failing", ["create_thread", "delete_thread"])
async def test_chat_failing_in_the_pair_reconciler_then_drained(world: World, failing: str) -> None:
    await world.make_friends(ALICE, BOB)
    spy_of(world.chat).fail[failing] = errors.DependencyUnavailable("chat", retry_after=5)
    with contextlib.suppress(errors.DependencyUnavailable):
        await world.social.chat.open_direct_thread("alice", "bob")
    await world.service.remove(ALICE, "bob")
    await world.reactor.drain()
    spy_of(world.chat).fail.clear()
    await world.reactor.rearm_parked()
    await world.settle()
    assert world.local_chat.thread_count() == 0


# --- races: a block or unfriend against an accept and the first thread -------------------------


class Interleave(SqliteStore):
    """Yields to the event loop before every operation, so concurrent changes interleave at
    every store call (as requests on several instances do)."""

    async def read(self, *a: Any, **k: Any) -> Any:
        await asyncio.sleep(0)
        return await super().read(*a, **k)

    async def read_many(self, *a: Any, **k: Any) -> Any:
        await asyncio.sleep(0)
        return await super().read_many(*a, **k)

    async def create(self, *a: Any, **k: Any) -> Any:
        await asyncio.sleep(0)
        return await super().create(*a, **k)

    async def replace(self, *a: Any, **k: Any) -> Any:
        await asyncio.sleep(0)
        return await super().replace(*a, **k)

    async def upsert(self, *a: Any, **k: Any) -> Any:
        await asyncio.sleep(0)
        return await super().upsert(*a, **k)

    async def delete(self, *a: Any, **k: Any) -> Any:
        await asyncio.sleep(0)
        return await super().delete(*a, **k)


@pytest.mark.parametrize("ending", ["block", "unfriend", "block-by-requester"])
async def test_block_or_unfriend_racing_accept_and_first_thread(
    tmp_path: Path, ending: str
) -> None:
    """Every pair: alice asked; then bob's accept, bob's first `PUT …/thread` (twice: either
    side may be first) and the ending run at once. After a drain the integrity check holds:
    never a live chat between two users who are not friends."""
    store = Interleave(tmp_path / "s.sqlite")
    chat = LocalChatProvider(tmp_path)
    social = Social(store, tmp_path, chat=chat)
    pairs = 25
    for n in range(pairs):
        for user in (f"a{n}", f"b{n}"):
            await store.upsert(
                "users",
                {
                    "id": user,
                    "pk": user,
                    "displayName": user,
                    "communicationUserId": f"8:acs:{user}",
                },
            )
        await social.friends.request(Caller(f"a{n}"), f"b{n}")

    async def quietly(step: Any) -> None:
        # A step the others made moot: not friends (404), already blocked (409), a lost race.
        with contextlib.suppress(errors.NotFound, errors.Conflict, errors.DependencyUnavailable):
            await step

    async def race(n: int) -> None:
        a, b = Caller(f"a{n}"), Caller(f"b{n}")
        endings = {
            "block": social.friends.block(a, b.user_id),
            "unfriend": social.friends.remove(a, b.user_id),
            "block-by-requester": social.friends.block(b, a.user_id),
        }
        end = endings.pop(ending)
        for unused in endings.values():
            unused.close()
        steps = [
            social.friends.request(b, a.user_id),
            social.chat.open_direct_thread(b.user_id, a.user_id),
            social.chat.open_direct_thread(a.user_id, b.user_id),
            end,
        ]
        order = steps[n % 4 :] + steps[: n % 4]
        await asyncio.gather(*(quietly(s) for s in order))

    await asyncio.gather(*(race(n) for n in range(pairs)))
    await social.reactor.drain()
    assert await integrity.check(store, chat) == []
    for n in range(pairs):
        assert not await social.friends.are_friends(f"a{n}", f"b{n}")
    assert chat.thread_count() == 0
    await store.close()


# --- invites ----------------------------------------------------------------------------------


async def test_invite_redeemed_once_makes_friends(world: World) -> None:
    invite = await world.service.create_invite(ALICE)
    assert len(invite.code) >= 22  # 128 bits, URL-safe
    assert invite.expires_at == world.clock.now + timedelta(hours=24)
    world.spy.calls.clear()
    redeemed = await world.service.redeem_invite(BOB, invite.code)
    # The code read, spent and marked befriended (2 replaces); the profiles, the pair for blocks
    # and again for the change (3 read_many); the pair read and created; both sides written;
    # the `pair` work before and after.
    assert world.spy.calls == {
        "read": 2,
        "replace": 2,
        "read_many": 3,
        "count": 4,
        "create": 1,
        "upsert": 4,
    }
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


async def test_redeem_failing_before_the_friendship_is_finished_by_its_redeemer(
    world: World,
) -> None:
    invite = await world.service.create_invite(ALICE)
    world.spy.fail["create:friends"] = store_down()  # the pair document cannot be written
    with pytest.raises(errors.DependencyUnavailable):
        await world.service.redeem_invite(BOB, invite.code)
    world.spy.fail.clear()
    assert not await world.service.are_friends("alice", "bob")
    with pytest.raises(errors.NotFound):  # spent: nobody else may use it
        await world.service.redeem_invite(CAROL, invite.code)
    assert (await world.service.redeem_invite(BOB, invite.code)).user_id == "alice"
    assert await world.service.are_friends("alice", "bob")
    await world.settle()


class Hook(SqliteStore):
    """Runs `then` once, right after the first ReadMany of `container` returns: another
    request's change lands between this one's read and its write."""

    container = "friends"
    then: Any = None

    async def read_many(self, container: str, keys: Any) -> list[Doc]:
        found = await super().read_many(container, keys)
        if self.then is not None and container == self.container:
            then, self.then = self.then, None
            await then()
        return found


async def test_an_accept_racing_a_cancel_does_not_make_friends(tmp_path: Path) -> None:
    store = Hook(tmp_path / "s.sqlite")
    social = Social(store, tmp_path)
    service = social.friends
    for caller in (ALICE, BOB):
        await store.upsert(
            "users",
            {"id": caller.user_id, "pk": caller.user_id, "displayName": caller.name},
        )
    assert await service.request(ALICE, "bob") == "outgoing"
    store.then = lambda: service.remove(ALICE, "bob")
    # bob read alice's request, then alice cancelled it: bob's accept must not resurrect it.
    assert await service.request(BOB, "alice") == "outgoing"  # a new request of his own
    assert not await service.are_friends("alice", "bob")
    assert (await service.list_friends(ALICE, "accepted", 10, None)).items == []
    await social.reactor.drain()
    assert await integrity.check(store, social.chat_provider) == []
    await store.close()


async def test_a_redeem_racing_a_block_does_not_overwrite_it(tmp_path: Path) -> None:
    store = Hook(tmp_path / "s.sqlite")
    social = Social(store, tmp_path)
    service = social.friends
    for caller in (ALICE, BOB):
        await store.upsert(
            "users",
            {"id": caller.user_id, "pk": caller.user_id, "displayName": caller.name},
        )
    invite = await service.create_invite(ALICE)
    store.then = lambda: service.block(ALICE, "bob")
    # bob checked for blocks, then alice blocked him: his redeem must not replace her block.
    with pytest.raises(errors.NotFound):
        await service.redeem_invite(BOB, invite.code)
    assert not await service.are_friends("alice", "bob")
    mine = await store.read("friends", "alice", friend_doc_id("bob"))
    assert mine is not None
    assert mine["status"] == "blocked"
    assert (await service.list_friends(BOB, "accepted", 10, None)).items == []
    await social.reactor.drain()
    assert await integrity.check(store, social.chat_provider) == []
    await store.close()
