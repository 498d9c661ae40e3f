"""The friends service on both stores (SQLite and the Cosmos-protocol server): the queries it
relies on (order by display name, paging, ReadMany across partitions) and the conditional write
that spends an invite behave the same on each."""

from __future__ import annotations

import asyncio

from switchboard import errors
from switchboard.ports import DocumentStore
from switchboard.services.caller import Caller
from switchboard.services.friends import FriendsService


async def _user(store: DocumentStore, user_id: str, name: str) -> Caller:
    await store.upsert(
        "users",
        {
            "id": user_id,
            "pk": user_id,
            "userId": user_id,
            "displayName": name,
            "displayNameSet": True,
            "communicationUserId": f"8:acs:{user_id}",
            "phoneNumber": None,
            "phoneVerified": False,
            "createdAt": "2026-11-23T00:00:00Z",
        },
    )
    return Caller(user_id, name)


async def test_friends_list_order_paging_and_access(store: DocumentStore) -> None:
    service = FriendsService(store)
    alice = await _user(store, "alice", "Alice")
    others = [await _user(store, f"u{i}", f"Name {9 - i}") for i in range(10)]
    for other in others:
        assert await service.request(alice, other.user_id) == "outgoing"
        assert await service.request(other, "alice") == "accepted"
    names: list[str] = []
    token = None
    while True:
        page = await service.list_friends(alice, "accepted", 4, token)
        names += [f.display_name for f in page.items]
        assert all(f.communication_user_id for f in page.items)
        token = page.continuation
        if token is None:
            break
    assert names == [f"Name {i}" for i in range(10)]
    assert await service.are_friends("alice", "u3")
    await service.block(others[3], "alice")
    assert not await service.are_friends("alice", "u3")
    await service.purge_user("alice")
    assert (await service.list_friends(others[0], "accepted", 10, None)).items == []


async def test_one_winner_when_an_invite_is_raced(store: DocumentStore) -> None:
    service = FriendsService(store)
    owner = await _user(store, "owner", "Owner")
    racers = [await _user(store, f"r{i}", f"Racer {i}") for i in range(5)]
    invite = await service.create_invite(owner)
    results = await asyncio.gather(
        *(service.redeem_invite(r, invite.code) for r in racers), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, errors.NotFound) for r in results if isinstance(r, Exception))
    assert len((await service.list_friends(owner, "accepted", 10, None)).items) == 1
