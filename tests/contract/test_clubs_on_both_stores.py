"""The clubs on both stores (SQLite and the Cosmos-protocol server), as two instances sharing
one store (Functions scales out; two SQLite connections stand for two processes): the call
registry's conditional writes, member paging, and the races the attack pass found — erase vs
invite and accept, concurrent joins and leaves, the owner leaving with others — each followed by
a drain of the reaction layer on both instances and the clubs' integrity check."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchboard import errors
from switchboard.ports import DocumentStore
from switchboard.runtime import Runtime
from switchboard.services.caller import Caller
from tests.conftest import make_runtime
from tests.contract.conftest import TEST_CLIENT_OPTIONS
from tests.integrity.clubs import check

CALLS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(8)]


def _second_client(store: DocumentStore) -> DocumentStore:
    """Another client of the same store: another instance's view."""
    inner: Any = store
    if hasattr(inner, "_path"):
        from switchboard.adapters.sqlite_store import SqliteStore

        return SqliteStore(inner._path)
    from switchboard.adapters.cosmos_store import CosmosStore

    return CosmosStore(
        inner._endpoint, inner._database_name, inner._credential, **TEST_CLIENT_OPTIONS
    )


@pytest.fixture
async def two(store: DocumentStore, tmp_path: Path) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Two instances on one store and one data dir (the local ACS issuer and chat are files)."""
    first = make_runtime(tmp_path, store=store)
    second_store = _second_client(store)
    second = make_runtime(tmp_path, store=second_store)
    yield first, second
    await second_store.close()
    await first.chat_provider.close()
    await second.chat_provider.close()


async def settle(a: Runtime, b: Runtime) -> None:
    """Both instances drain (concurrently, as two workers would), then all must hold."""
    await asyncio.gather(a.reactor.drain(), b.reactor.drain())
    await a.reactor.drain()
    assert await check(a.adapters.store, a.chat_provider) == []


async def signed_in(rt: Runtime, *names: str) -> None:
    for name in names:
        await rt.identity.issue_token(Caller(name, name.title()), None, None)


async def test_racing_members_end_with_one_call(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    await signed_in(a, *(f"u{n}" for n in range(len(CALLS))))
    club = await a.clubs.create_club("u0", "Chess", "invite")
    for n in range(1, len(CALLS)):
        await a.clubs.invite("u0", club.club_id, f"u{n}")
        await (a if n % 2 else b).clubs.join(f"u{n}", club.club_id)

    async def start(n: int) -> str | None:
        rt = a if n % 2 else b
        try:
            return (await rt.clubs.register_call(f"u{n}", club.club_id, CALLS[n]))[0].group_call_id
        except errors.CallAlreadyActive as exc:
            return exc.extra["groupCallId"]

    told = await asyncio.gather(*(start(n) for n in range(len(CALLS))))
    assert len(set(told)) == 1
    assert (await b.clubs.get_call("u3", club.club_id)).group_call_id == told[0]
    await settle(a, b)


async def test_list_members_and_leave_on_each_store(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    await signed_in(a, "alice", *(f"u{n}" for n in range(5)))
    first = await a.clubs.create_club("alice", "Chess", "open")
    second = await a.clubs.create_club("alice", "Go", "invite")
    for n in range(5):
        await b.clubs.join(f"u{n}", first.club_id)
    await a.clubs.register_call("u1", first.club_id, CALLS[0])
    listed = await a.clubs.list_clubs("alice")
    assert {(c.club_id, c.active_call is not None) for c in listed} == {
        (first.club_id, True),
        (second.club_id, False),
    }
    seen: list[str] = []
    continuation: str | None = None
    while True:
        page = await b.clubs.list_members("u2", first.club_id, 2, continuation)
        seen += [m.user_id for m in page.items]
        continuation = page.continuation
        if continuation is None:
            break
    assert sorted(seen) == ["alice", *(f"u{n}" for n in range(5))]
    await a.clubs.remove_member("alice", first.club_id, "alice")  # hands over
    await settle(a, b)
    view = await b.clubs.get_club("u0", first.club_id)
    assert (view.member_count, view.owner_id != "alice") == (5, True)
    await a.clubs.delete_club(view.owner_id, first.club_id)
    assert await b.clubs.list_clubs("u1") == []
    await settle(a, b)
    assert (await a.adapters.store.query("clubs", first.club_id)).items == []


async def test_erase_racing_invitations_and_acceptances_leaves_nothing(
    two: tuple[Runtime, Runtime],
) -> None:
    """Six victims erase themselves while the owner invites them (on the other instance) and
    while earlier invitations are being accepted: after the drain no record or copy names a
    user without a profile, and every count is right."""
    a, b = two
    victims = [f"v{n}" for n in range(6)]
    await signed_in(a, "owner", *victims)
    club = await a.clubs.create_club("owner", "Chess", "invite")
    for victim in victims[:3]:
        await a.clubs.invite("owner", club.club_id, victim)

    async def invite(victim: str) -> None:
        # Erased first: the same answer as an unknown user.
        with contextlib.suppress(errors.NotFound):
            await b.clubs.invite("owner", club.club_id, victim)

    async def accept(victim: str) -> None:
        # Their own accept during their erase: refused (409 erasure_in_progress) or removed.
        with contextlib.suppress(errors.NotFound, errors.ErasureInProgress):
            await b.clubs.join(victim, club.club_id)

    work = []
    for n, victim in enumerate(victims):
        work.append(a.identity.erase(Caller(victim)))
        work.append(accept(victim) if n < 3 else invite(victim))
    await asyncio.gather(*work)
    await settle(a, b)
    profiles = await a.identity.get_many(victims)
    view = await a.clubs.get_club("owner", club.club_id)
    members = await a.clubs.list_members("owner", club.club_id, 50, None)
    assert {m.user_id for m in members.items} <= {"owner", *profiles}
    assert view.member_count == len(members.items)


async def test_concurrent_joins_and_leaves_converge(two: tuple[Runtime, Runtime]) -> None:
    a, b = two
    people = [f"p{n}" for n in range(12)]
    await signed_in(a, "owner", *people)
    club = await a.clubs.create_club("owner", "Chess", "open")

    async def churn(n: int, person: str) -> None:
        rt = a if n % 2 else b
        await rt.clubs.join(person, club.club_id)
        if n % 3 == 0:
            await (b if n % 2 else a).clubs.remove_member(person, club.club_id, person)
            await rt.clubs.join(person, club.club_id)
        if n % 4 == 0:
            await rt.clubs.remove_member(person, club.club_id, person)

    await asyncio.gather(*(churn(n, p) for n, p in enumerate(people)))
    await settle(a, b)
    stayed = [p for n, p in enumerate(people) if n % 4]
    view = await b.clubs.get_club("owner", club.club_id)
    assert view.member_count == 1 + len(stayed)


async def test_the_owner_leaving_with_others_leaving_keeps_an_owner(
    two: tuple[Runtime, Runtime],
) -> None:
    a, b = two
    await signed_in(a, "owner", "m1", "m2", "m3")
    club = await a.clubs.create_club("owner", "Chess", "open")
    for n, person in enumerate(("m1", "m2", "m3")):
        await (a if n % 2 else b).clubs.join(person, club.club_id)
    await asyncio.gather(
        a.clubs.remove_member("owner", club.club_id, "owner"),
        b.clubs.remove_member("m1", club.club_id, "m1"),
        a.clubs.remove_member("m2", club.club_id, "m2"),
    )
    await settle(a, b)
    view = await a.clubs.get_club("m3", club.club_id)
    assert (view.owner_id, view.member_count) == ("m3", 1)
