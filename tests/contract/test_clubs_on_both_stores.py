"""The clubs service on both stores (SQLite and the Cosmos-protocol server): the batched reads
it relies on for the membership check and the list, the member paging, and the conditional
writes of the call registry (create-with-conflict and etag replace) behave the same on each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from switchboard import errors
from switchboard.ports import DocumentStore
from switchboard.services.clubs import ClubsService

CALLS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(8)]


async def test_racing_members_end_with_one_call(store: DocumentStore) -> None:
    now = [datetime(2026, 11, 23, 12, tzinfo=UTC)]
    clubs = ClubsService(store, clock=lambda: now[0])
    club = await clubs.create_club("u0", "Chess", "invite")
    for n in range(1, len(CALLS)):
        await store.upsert("users", {"id": f"u{n}", "pk": f"u{n}", "userId": f"u{n}"})
        await clubs.add_member("u0", club.club_id, f"u{n}")

    async def start(n: int) -> str:
        try:
            return (await clubs.register_call(f"u{n}", club.club_id, CALLS[n]))[0].group_call_id
        except errors.CallAlreadyActive as exc:
            return exc.extra["groupCallId"]

    for _ in range(2):  # a first call, then (after it went idle) its replacement
        told = await asyncio.gather(*(start(n) for n in range(len(CALLS))))
        assert len(set(told)) == 1
        assert (await clubs.get_call("u3", club.club_id)).group_call_id == told[0]
        now[0] += timedelta(hours=13)


async def test_list_members_and_leave_on_each_store(store: DocumentStore) -> None:
    clubs = ClubsService(store)
    first = await clubs.create_club("alice", "Chess", "open")
    second = await clubs.create_club("alice", "Go", "invite")
    for n in range(5):
        await clubs.join(f"u{n}", first.club_id)
    await clubs.register_call("u1", first.club_id, CALLS[0])
    listed = await clubs.list_clubs("alice")
    assert [(c.club_id, c.active_call is not None) for c in listed] == [
        (first.club_id, True),
        (second.club_id, False),
    ]
    seen: list[str] = []
    continuation: str | None = None
    while True:
        page = await clubs.list_members("u2", first.club_id, 2, continuation)
        seen += [m.user_id for m in page.items]
        continuation = page.continuation
        if continuation is None:
            break
    assert seen == ["alice", *(f"u{n}" for n in range(5))]
    await clubs.remove_member("alice", first.club_id, "alice")  # hands over to u0
    assert (await clubs.get_club("u0", first.club_id)).role == "owner"
    assert await clubs.list_clubs("u1") != []
    await clubs.delete_club("u0", first.club_id)
    assert await clubs.list_clubs("u1") == []
    assert (await store.query("clubs", first.club_id)).items == []
