"""IdentityService rules with fake ACS and a real SQLite store: mapping, races, policy, erase."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.ports import TeamsTokenRejected
from switchboard.services.caller import Caller
from switchboard.services.identity import (
    IdentityDoc,
    IdentityService,
    TokenPolicy,
    UserDoc,
)
from switchboard.services.token_budget import TokenBudget
from tests.fakes import TEAMS_APP, TEAMS_OID, FakeIdentityProvider, entra_token, store_down
from tests.proxies import spy, spy_of

ALICE = Caller("alice", "Alice")
BOB = Caller("bob", "Bob")


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.sqlite = SqliteStore(tmp_path / "s.sqlite")
        # One spy per port: it counts each operation and fails those named in its `fail`.
        self.store = spy(self.sqlite)
        self.store_spy = spy_of(self.store)
        self.fake = FakeIdentityProvider(yield_between=True)
        self.acs = spy(self.fake)
        self.acs_spy = spy_of(self.acs)
        self.service = IdentityService(self.store, self.acs, TokenPolicy(("chat", "voip"), 60))

    def reset_counts(self) -> None:
        self.store_spy.calls.clear()
        self.acs_spy.calls.clear()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    yield w
    await w.sqlite.close()


async def test_first_token_creates_identity_and_later_ones_reuse_it(world: World) -> None:
    first = await world.service.issue_token(ALICE, None, None)
    second = await world.service.issue_token(ALICE, ["chat"], 120)
    assert first.communication_user_id == second.communication_user_id
    assert first.token != second.token
    assert first.scopes == ["chat", "voip"]
    assert second.scopes == ["chat"]
    reverse = await world.sqlite.read(
        "identities", first.communication_user_id, first.communication_user_id
    )
    assert reverse is not None
    assert reverse["userId"] == "alice"


async def test_operation_counts_per_token_request(world: World) -> None:
    # The token budget adds one point read (beside the profile's) and one conditional write.
    await world.service.issue_token(ALICE, None, None)
    # A first token: the profile, the erasure record (none: not being erased), the budget.
    assert world.store_spy.calls == {"read": 3, "create": 3}
    assert world.acs_spy.calls == {"create_user_and_token": 1}
    world.reset_counts()
    await world.service.issue_token(ALICE, None, None)
    # Steady state: the profile read and the budget's conditional write (the record as this
    # process last wrote it; the etag condition is the check).
    assert world.store_spy.calls == {"read": 1, "replace": 1}
    assert world.acs_spy.calls == {"issue_token": 1}
    # Another instance (a new service on the same store): its first request reads the record.
    other = IdentityService(world.store, world.acs, TokenPolicy(("chat", "voip"), 60))
    world.reset_counts()
    await other.issue_token(ALICE, None, None)
    assert world.store_spy.calls == {"read": 2, "replace": 1}


async def test_twenty_concurrent_first_requests_leave_exactly_one_identity(world: World) -> None:
    results = await asyncio.gather(
        *(world.service.issue_token(ALICE, None, None) for _ in range(20))
    )
    ids = {r.communication_user_id for r in results}
    assert len(ids) == 1
    (winner,) = ids
    # The losers deleted the identities they created: only the winner is left in ACS...
    assert set(world.fake.identities) == {winner}
    assert len(world.fake.deleted) == world.acs_spy.calls["create_user_and_token"] - 1
    # ...and in the reverse map.
    page = await world.sqlite.query("identities", winner)
    assert [d["id"] for d in page.items] == [winner]
    for other in world.fake.deleted:
        assert await world.sqlite.read("identities", other, other) is None


async def test_users_get_distinct_identities(world: World) -> None:
    a = await world.service.issue_token(ALICE, None, None)
    b = await world.service.issue_token(BOB, None, None)
    assert a.communication_user_id != b.communication_user_id


@pytest.mark.parametrize(
    ("scopes", "minutes", "error", "code"),
    [
        (["bogus"], None, errors.InvalidScope, "invalid_scope"),
        (["voip.join"], None, errors.ScopeNotAllowed, "scope_not_allowed"),
        ([], None, errors.InvalidInput, "invalid_input"),
        (None, 59, errors.InvalidInput, "invalid_input"),
        (None, 1441, errors.InvalidInput, "invalid_input"),
    ],
)
async def test_token_policy_refuses_and_changes_nothing(
    world: World,
    scopes: list[str] | None,
    minutes: int | None,
    error: type[errors.SwitchboardError],
    code: str,
) -> None:
    with pytest.raises(error) as caught:
        await world.service.issue_token(ALICE, scopes, minutes)
    assert caught.value.code == code
    assert world.acs_spy.calls == {}
    assert world.store_spy.calls == {}


def test_policy_defaults_and_dedupes() -> None:
    policy = TokenPolicy(("chat", "voip"), 90)
    scopes, lifetime = policy.resolve(["voip", "voip"], None)
    assert scopes == ["voip"]
    assert lifetime.total_seconds() == 90 * 60


async def test_acs_down_on_first_token_leaves_no_state(world: World) -> None:
    world.fake.fail["create_user_and_token"] = errors.DependencyUnavailable("acs", retry_after=7)
    with pytest.raises(errors.DependencyUnavailable) as caught:
        await world.service.issue_token(ALICE, None, None)
    assert caught.value.retry_after == 7
    assert await world.sqlite.read("users", "alice", "alice") is None


async def test_store_down_after_acs_create_deletes_the_new_identity(world: World) -> None:
    # Alice has a budget record already, so the failing create is her profile's.
    await world.sqlite.create("users", {"id": "tokens:alice", "pk": "alice", "tat": 0})
    world.store_spy.fail["create:users"] = store_down()
    with pytest.raises(errors.DependencyUnavailable):
        await world.service.issue_token(ALICE, None, None)
    assert world.fake.identities == {}  # created, then deleted again
    assert len(world.fake.deleted) == 1
    (orphan,) = world.fake.deleted
    assert await world.sqlite.read("identities", orphan, orphan) is None
    assert await world.sqlite.read("users", "alice", "alice") is None


async def test_revoke_invalidates_earlier_tokens_of_the_caller_only(world: World) -> None:
    a = await world.service.issue_token(ALICE, None, None)
    b = await world.service.issue_token(BOB, None, None)
    await world.service.revoke_tokens(ALICE)
    assert not world.fake.token_valid(a.token)
    assert world.fake.token_valid(b.token)
    after = await world.service.issue_token(ALICE, None, None)
    assert world.fake.token_valid(after.token)


async def test_revoke_before_any_token_creates_the_profile_only(world: World) -> None:
    await world.service.revoke_tokens(ALICE)
    assert world.acs_spy.calls == {}
    profile = await world.service.get_profile(ALICE)
    assert profile.communication_user_id is None
    assert profile.display_name == "Alice"


async def test_erase_deletes_identity_mapping_and_profile(world: World) -> None:
    a = await world.service.issue_token(ALICE, None, None)
    b = await world.service.issue_token(BOB, None, None)
    await world.service.erase(ALICE)
    assert a.communication_user_id in world.fake.deleted
    assert not world.fake.token_valid(a.token)
    assert await world.sqlite.read("users", "alice", "alice") is None
    ida = a.communication_user_id
    assert await world.sqlite.read("identities", ida, ida) is None
    # Bob is untouched.
    assert world.fake.token_valid(b.token)
    assert (await world.service.get_profile(BOB)).communication_user_id == b.communication_user_id
    # Until the erasure's purge is done, nothing maps Alice anew: not her own token request...
    with pytest.raises(errors.ErasureInProgress):
        await world.service.issue_token(ALICE, None, None)
    assert len(world.fake.identities) == 1  # Bob's: no identity was created and discarded
    await world.service.reconcile_erasure("alice")
    # One clean pass is not the end: a copy written by a request that raced the erase may land
    # just after it. The second pass, seconds later, finishes.
    with pytest.raises(errors.ErasureInProgress):
        await world.service.issue_token(ALICE, None, None)
    await world.service.reconcile_erasure("alice")
    # ...after it, her next token request maps a brand-new identity.
    again = await world.service.issue_token(ALICE, None, None)
    assert again.communication_user_id != a.communication_user_id


async def test_erase_costs_the_same_store_operations_whatever_the_user_owns(
    world: World,
) -> None:
    await world.service.issue_token(ALICE, None, None)
    world.reset_counts()
    await world.service.erase(ALICE)
    # profile + record (1), work before/after (2), record (1), reverse map and profile (2)
    assert world.store_spy.calls == {"read_many": 1, "upsert": 3, "delete": 2}
    assert world.acs_spy.calls == {"delete_user": 1}


async def test_erase_with_acs_down_is_finished_by_the_reconciler(world: World) -> None:
    a = await world.service.issue_token(ALICE, None, None)
    world.fake.fail["delete_user"] = errors.DependencyUnavailable("acs")
    with pytest.raises(errors.DependencyUnavailable):
        await world.service.erase(ALICE)
    # Alice is gone all the same, and nothing creates her anew while the reconciler retries.
    assert await world.sqlite.read("users", "alice", "alice") is None
    with pytest.raises(errors.ErasureInProgress):
        await world.service.get_profile(ALICE)
    with pytest.raises(errors.DependencyUnavailable):
        await world.service.reconcile_erasure("alice")
    world.fake.fail.clear()
    await world.service.reconcile_erasure("alice")
    await world.service.reconcile_erasure("alice")
    assert a.communication_user_id in world.fake.deleted
    assert await world.sqlite.read("users", "alice", "alice") is None
    assert await world.sqlite.read("users", "erasure:alice", "erasure") is None


async def test_erase_finishes_on_retry_after_store_failure(world: World) -> None:
    a = await world.service.issue_token(ALICE, None, None)
    world.store_spy.fail["delete:users"] = store_down()
    with pytest.raises(errors.DependencyUnavailable):
        await world.service.erase(ALICE)
    world.store_spy.fail.clear()
    await world.service.erase(ALICE)
    assert await world.sqlite.read("users", "alice", "alice") is None
    assert a.communication_user_id in world.fake.deleted


async def test_identity_deleted_behind_our_back_is_replaced(world: World) -> None:
    a = await world.service.issue_token(ALICE, None, None)
    await world.fake.delete_user(a.communication_user_id)
    b = await world.service.issue_token(ALICE, None, None)
    assert b.communication_user_id != a.communication_user_id
    old = a.communication_user_id
    assert await world.sqlite.read("identities", old, old) is None
    assert (await world.service.get_profile(ALICE)).communication_user_id == b.communication_user_id


async def test_profile_update_keeps_identity_and_survives_concurrent_token(world: World) -> None:
    await world.service.get_profile(ALICE)
    results = await asyncio.gather(
        world.service.update_profile(ALICE, "Alice B."),
        world.service.issue_token(ALICE, None, None),
    )
    token = results[1]
    profile = await world.service.get_profile(ALICE)
    assert profile.display_name == "Alice B."
    assert profile.communication_user_id == token.communication_user_id


# --- Teams token exchange -------------------------------------------------------------------


def teams_service(world: World, client_id: str | None = TEAMS_APP) -> IdentityService:
    return IdentityService(
        world.store, world.acs, TokenPolicy(("chat",), 60), teams_client_id=client_id
    )


async def test_teams_exchange_names_the_teams_user_and_stores_nothing(world: World) -> None:
    issued = await teams_service(world).exchange_teams_token(ALICE, entra_token())
    assert issued.microsoft_teams_user_id == TEAMS_OID
    assert world.acs_spy.calls == {"exchange_teams_token": 1}
    # Nothing about the Teams user; the caller's token budget is charged (read + one write).
    assert world.store_spy.calls == {"read": 1, "create": 1}
    assert await world.sqlite.read("users", "alice", "alice") is None


async def test_teams_exchange_needs_configuration(world: World) -> None:
    with pytest.raises(errors.TeamsNotConfigured):
        await teams_service(world, None).exchange_teams_token(ALICE, entra_token())
    assert world.acs_spy.calls == {}


def _nested_payload(depth: int) -> str:
    payload = base64.urlsafe_b64encode(b"[" * depth + b"]" * depth).rstrip(b"=").decode()
    return f"e30.{payload}.x"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b.c",
        entra_token(oid=None),
        entra_token(oid="../x"),
        "e30.e30.x",
        # The oid must be a GUID, whole: "$" let a trailing newline through (issue 21 A8).
        entra_token(oid=TEAMS_OID + "\n"),
        entra_token(oid="-" * 36),
        # Deeply nested JSON in the payload: a 500 before (issue 18 §5), now a 400.
        _nested_payload(100_000),
        "a" * 20_000 + ".b.c",
    ],
)
async def test_teams_exchange_refuses_tokens_without_an_object_id(world: World, token: str) -> None:
    with pytest.raises(errors.InvalidTeamsToken) as caught:
        await teams_service(world).exchange_teams_token(ALICE, token)
    assert caught.value.status == 400
    assert world.acs_spy.calls == {}
    assert world.store_spy.calls == {}  # refused before the budget is charged


async def test_teams_token_refused_by_acs_is_invalid_input(world: World) -> None:
    world.fake.fail["exchange_teams_token"] = TeamsTokenRejected("nope")
    with pytest.raises(errors.InvalidTeamsToken) as caught:
        await teams_service(world).exchange_teams_token(ALICE, entra_token())
    assert caught.value.field == "aadToken"


async def test_a_token_request_inside_an_erase_is_refused_and_creates_no_identity(
    world: World,
) -> None:
    """A token request that arrives while the erase deletes the ACS identity (the profile is
    already gone) is refused before it creates anything."""
    first = await world.service.issue_token(ALICE, None, None)
    outcomes: list[str] = []
    real_delete = world.fake.delete_user

    async def delete_then_race(acs_id: str) -> None:
        await real_delete(acs_id)
        if not outcomes:
            try:
                await world.service.issue_token(ALICE, None, None)
                outcomes.append("token")
            except errors.ErasureInProgress:
                outcomes.append("refused")

    world.fake.delete_user = delete_then_race  # type: ignore[method-assign,assignment]
    await world.service.erase(ALICE)
    assert outcomes == ["refused"]
    assert world.fake.identities == {}
    assert first.communication_user_id in world.fake.deleted
    assert world.acs_spy.calls["create_user_and_token"] == 1  # the first token's only


async def test_token_requests_racing_an_erase_leave_no_identity_once_it_is_done(
    world: World,
) -> None:
    """Erase and token requests of the same user at once, many times over: whichever wins each
    step, after the erasure's reconciler nothing of the user is left in ACS or the store."""
    for round_ in range(10):
        await world.service.get_profile(ALICE)
        outcomes = await asyncio.gather(
            world.service.issue_token(ALICE, None, None),
            world.service.erase(ALICE),
            world.service.issue_token(ALICE, None, None),
            world.service.issue_token(ALICE, None, None),
            return_exceptions=True,
        )
        for outcome in outcomes:
            assert (
                outcome is None
                or not isinstance(outcome, BaseException)
                or isinstance(outcome, errors.DependencyUnavailable | errors.ErasureInProgress)
            ), (round_, outcome)
        await world.service.reconcile_erasure("alice")
        await world.service.reconcile_erasure("alice")
        assert await world.sqlite.read("users", "alice", "alice") is None, round_
        assert await world.sqlite.read("users", "erasure:alice", "erasure") is None
        assert world.fake.identities == {}, round_
        assert (await world.sqlite.query("identities", "x")).items == []


async def test_remap_survives_a_failed_tidy_of_the_old_reverse_entry(world: World) -> None:
    a = await world.service.issue_token(ALICE, None, None)
    await world.fake.delete_user(a.communication_user_id)  # gone behind our back
    world.store_spy.fail["delete:identities"] = store_down()
    b = await world.service.issue_token(ALICE, None, None)
    assert world.fake.token_valid(b.token)  # the new mapping was kept, not undone
    assert (await world.service.get_profile(ALICE)).communication_user_id == b.communication_user_id


class Owner:
    """A UserDataOwner that records whom it purged, and can be made to fail."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name
        self.fail: Exception | None = None

    async def purge_user(self, user_id: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.log.append(f"{self.name}:{user_id}")


async def test_the_erasure_reconciler_purges_every_owner_and_retries_after_a_failure(
    world: World,
) -> None:
    log: list[str] = []
    friends, clubs = Owner(log, "friends"), Owner(log, "clubs")
    service = IdentityService(
        world.store, world.acs, TokenPolicy(("chat",), 60), user_data_owners=[friends, clubs]
    )
    a = await service.issue_token(ALICE, None, None)
    await service.erase(ALICE)
    assert log == []  # the request purges nothing itself: the reconciler does
    assert a.communication_user_id in world.fake.deleted
    clubs.fail = errors.DependencyUnavailable("store")
    with pytest.raises(errors.DependencyUnavailable):
        await service.reconcile_erasure("alice")
    # Every owner ran; the record stays while one has not finished, so a retry runs again.
    assert log == ["friends:alice"]
    assert await world.sqlite.read("users", "erasure:alice", "erasure") is not None
    clubs.fail = None
    await service.reconcile_erasure("alice")
    assert log == ["friends:alice", "friends:alice", "clubs:alice"]
    # The first clean pass keeps the record for a second one (what raced past the first).
    assert await world.sqlite.read("users", "erasure:alice", "erasure") is not None
    await service.reconcile_erasure("alice")
    assert log[3:] == ["friends:alice", "clubs:alice"]
    assert await world.sqlite.read("users", "erasure:alice", "erasure") is None
    await service.reconcile_erasure("alice")  # done: a late duplicate finds nothing to do
    assert len(log) == 5
    # A user without a profile may still own data elsewhere: the owners are asked anyway.
    await service.erase(BOB)
    await service.reconcile_erasure("bob")
    await service.reconcile_erasure("bob")
    assert log[-4:] == ["friends:bob", "clubs:bob", "friends:bob", "clubs:bob"]


async def test_the_erasure_work_is_recorded_before_the_profile_goes(world: World) -> None:
    """Work before change: an erase that crashes after recording leaves work that finishes it."""
    from switchboard.services.reactions import Reactor, Work

    work = Work(world.store)
    service = IdentityService(world.store, world.acs, TokenPolicy(("chat",), 60), work=work)
    a = await world.service.issue_token(ALICE, None, None)  # (no "identity" work to follow)
    world.store_spy.fail["delete:users"] = store_down()
    with pytest.raises(errors.DependencyUnavailable):
        await service.erase(ALICE)
    world.store_spy.fail.clear()
    assert await world.sqlite.read("users", "alice", "alice") is not None  # the crash point
    reactor = Reactor(world.store, {"erasure": service.reconcile_erasure}, work)
    assert await reactor.drain() == 2  # two clean passes
    assert await world.sqlite.read("users", "alice", "alice") is None
    assert a.communication_user_id in world.fake.deleted
    assert (await reactor.backlog()).pending == 0


async def test_stored_documents_have_exactly_the_keys_their_typeddict_declares(
    world: World,
) -> None:
    a = await world.service.issue_token(ALICE, None, None)
    acs_id = a.communication_user_id
    user = await world.sqlite.read("users", "alice", "alice")
    reverse = await world.sqlite.read("identities", acs_id, acs_id)
    assert user is not None
    assert reverse is not None
    for doc, typed in ((user, UserDoc), (reverse, IdentityDoc)):
        assert {k for k in doc if not k.startswith("_")} == {
            k for k in typed.__annotations__ if not k.startswith("_")
        }


async def test_profile_observers_hear_a_saved_display_name(world: World) -> None:
    heard: list[tuple[str, str]] = []

    class Roster:
        async def profile_changed(self, user_id: str, display_name: str) -> None:
            heard.append((user_id, display_name))

    service = IdentityService(
        world.store, world.acs, TokenPolicy(("chat",), 60), profile_observers=[Roster()]
    )
    await service.get_profile(ALICE)
    assert heard == []  # reading (and creating) a profile is not a change
    view = await service.update_profile(ALICE, "Alice L.")
    assert heard == [("alice", "Alice L.")]
    assert view.display_name == "Alice L."


async def test_chat_identity_never_creates_anyone_but_the_caller_themself(world: World) -> None:
    """Issue 19 §5: another user's request (seating someone in a chat) never creates a profile
    or an ACS identity; only the user's own request does, and not while they are being erased."""
    with pytest.raises(errors.NotFound):
        await world.service.chat_identity("alice")
    with pytest.raises(errors.NotFound):
        await world.service.chat_identity("alice", caller=BOB)
    assert await world.sqlite.read("users", "alice", "alice") is None
    assert world.acs_spy.calls == {}
    acs_id, name = await world.service.chat_identity("alice", caller=ALICE)
    assert name == "Alice"
    assert world.fake.identities.keys() == {acs_id}
    await world.service.erase(ALICE)
    with pytest.raises(errors.NotFound):
        await world.service.chat_identity("alice")
    with pytest.raises(errors.ErasureInProgress):
        await world.service.chat_identity("alice", caller=ALICE)
    await world.service.reconcile_erasure("alice")
    with pytest.raises(errors.NotFound):  # erased for good: only her own sign-in brings her back
        await world.service.chat_identity("alice")
    assert world.fake.identities == {}


# --- the token budget (TOKEN_BUDGET, issue 21 B1) -------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def budget_service(world: World, clock: Clock, budget: str = "5/10m") -> IdentityService:
    return IdentityService(
        world.store,
        world.acs,
        TokenPolicy(("chat", "voip"), 60),
        clock=clock,
        teams_client_id=TEAMS_APP,
        token_budget=TokenBudget.parse(budget),
    )


async def test_past_the_budget_a_user_gets_429_with_the_wait_and_acs_is_not_called(
    world: World,
) -> None:
    clock = Clock()
    service = budget_service(world, clock, "5/10m")  # a burst of 5, then one every 2 minutes
    for _ in range(5):
        await service.issue_token(ALICE, None, None)
    world.reset_counts()
    with pytest.raises(errors.TokenRateLimited) as caught:
        await service.issue_token(ALICE, None, None)
    assert (caught.value.status, caught.value.code) == (429, "token_rate_limited")
    assert caught.value.retry_after == 120
    assert world.acs_spy.calls == {}
    assert world.store_spy.calls == {"read": 1}  # the profile; refused without a write
    # Another user is not affected.
    assert (await service.issue_token(BOB, None, None)).token
    # The wait said is the wait needed: a second early is still refused, then one goes through.
    clock.now += timedelta(seconds=119)
    with pytest.raises(errors.TokenRateLimited) as again:
        await service.issue_token(ALICE, None, None)
    assert again.value.retry_after == 1
    clock.now += timedelta(seconds=1)
    await service.issue_token(ALICE, None, None)
    with pytest.raises(errors.TokenRateLimited):
        await service.issue_token(ALICE, None, None)
    # A quiet window refills the whole burst.
    clock.now += timedelta(minutes=10)
    for _ in range(5):
        await service.issue_token(ALICE, None, None)


async def test_the_teams_exchange_spends_the_same_budget(world: World) -> None:
    service = budget_service(world, Clock(), "3/1h")
    await service.issue_token(ALICE, None, None)
    await service.exchange_teams_token(ALICE, entra_token())
    await service.issue_token(ALICE, None, None)
    with pytest.raises(errors.TokenRateLimited):
        await service.exchange_teams_token(ALICE, entra_token())
    with pytest.raises(errors.TokenRateLimited):
        await service.issue_token(ALICE, None, None)
    assert world.acs_spy.calls["exchange_teams_token"] == 1


async def test_revoke_and_erase_do_not_reset_the_budget(world: World) -> None:
    service = budget_service(world, Clock(), "2/10m")
    await service.issue_token(ALICE, None, None)
    await service.issue_token(ALICE, None, None)
    await service.revoke_tokens(ALICE)
    with pytest.raises(errors.TokenRateLimited):
        await service.issue_token(ALICE, None, None)
    await service.erase(ALICE)
    assert await world.sqlite.read("users", "alice", "alice") is None
    with pytest.raises(errors.TokenRateLimited):
        await service.issue_token(ALICE, None, None)


async def test_the_record_audits_the_last_issue_never_the_token(world: World) -> None:
    clock = Clock()
    service = budget_service(world, clock)
    issued = await service.issue_token(ALICE, ["chat"], 60)
    record = await world.sqlite.read("users", "alice", "tokens:alice")
    assert record is not None
    assert record["lastIssuedAt"] == clock.now.isoformat()
    assert record["lastKind"] == "acs"
    assert issued.token not in str(record)
    assert 0 < record["ttl"] <= 600 + 60  # gone from the store once it says nothing


async def test_concurrent_requests_of_one_user_spend_exactly_the_budget(world: World) -> None:
    # Twenty at once from alice against a budget of 5, and bob's at the same moment: alice gets
    # five tokens and fifteen 429s (never a 503 from lost races), bob his token.
    service = budget_service(world, Clock(), "5/10m")
    results = await asyncio.gather(
        *(service.issue_token(ALICE, None, None) for _ in range(20)),
        service.issue_token(BOB, None, None),
        return_exceptions=True,
    )
    alice, (bob,) = results[:20], results[20:]
    assert sum(1 for r in alice if isinstance(r, errors.TokenRateLimited)) == 15
    assert sum(1 for r in alice if not isinstance(r, BaseException)) == 5
    assert not isinstance(bob, BaseException)


@pytest.mark.parametrize(
    ("text", "count", "window"),
    [("30/10m", 30, 600), ("5/m", 5, 60), (" 100 / 1h ", 100, 3600), ("2/30s", 2, 30)],
)
def test_budget_forms(text: str, count: int, window: int) -> None:
    assert TokenBudget.parse(text) == TokenBudget(count, window)


@pytest.mark.parametrize("text", ["", "30", "30/", "0/10m", "30/0m", "30/25h", "-1/m", "30/10d"])
def test_bad_budget_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be|needs"):
        TokenBudget.parse(text)


async def test_a_charge_by_another_instance_is_seen_by_the_conditional_write(world: World) -> None:
    # Two instances on one store, each remembering alice's record as it last wrote it: a write
    # from a stale memory fails its etag, is read again, and the budget holds between them.
    clock = Clock()
    first, second = budget_service(world, clock, "4/10m"), budget_service(world, clock, "4/10m")
    await first.issue_token(ALICE, None, None)
    await second.issue_token(ALICE, None, None)
    await first.issue_token(ALICE, None, None)  # stale memory: conflict, re-read, charged
    await second.issue_token(ALICE, None, None)
    for service in (first, second):
        with pytest.raises(errors.TokenRateLimited):
            await service.issue_token(ALICE, None, None)
    assert world.acs_spy.calls["issue_token"] == 3  # + the first token's create
