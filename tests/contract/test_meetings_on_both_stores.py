"""The meetings service on both stores (SQLite and the Cosmos-protocol server): the invitee check
(ReadMany), the agenda's one descending query with its early stop and paging, cancellation and the
erase that rewrites a meeting with its etag behave the same on each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.adapters.graph_local import LocalMeetingProvider
from switchboard.ports import DocumentStore
from switchboard.services.caller import Caller
from switchboard.services.meetings import MeetingsService

DAY = datetime(2026, 11, 24, tzinfo=UTC)


async def test_meetings_on_each_store(store: DocumentStore, tmp_path: Path) -> None:
    for user in ("alice", "bob", "carol"):
        await store.upsert("users", {"id": user, "pk": user, "userId": user})
    meetings = MeetingsService(store, LocalMeetingProvider(tmp_path))
    alice, bob, carol = Caller("alice"), Caller("bob"), Caller("carol")
    with pytest.raises(errors.UnknownUsers):
        await meetings.schedule(alice, "x", DAY, DAY + timedelta(hours=1), ["bob", "ghost"])

    made = []
    for hour in (9, 14, 11):
        start = DAY + timedelta(hours=hour)
        made.append(
            await meetings.schedule(
                alice, f"at {hour}", start, start + timedelta(hours=1), ["bob", "carol"]
            )
        )
    for n in range(120):  # history beyond one page
        old = DAY - timedelta(days=2 + n)
        await meetings.schedule(alice, "old", old, old + timedelta(hours=1), ["bob"])

    for who in (alice, bob):
        day = await meetings.agenda(who, "2026-11-24", "Europe/Paris")
        assert [v.subject for v in day] == ["at 9", "at 11", "at 14"]
    assert len(await meetings.agenda(bob, "2026-11-20", None)) == 1

    await meetings.delete(alice, made[0].meeting_id)
    assert [v.subject for v in await meetings.agenda(carol, "2026-11-24", None)] == [
        "at 11",
        "at 14",
    ]
    await meetings.purge_user("carol")
    assert (await meetings.require_participant("bob", made[1].meeting_id)).invitees == ["bob"]
    assert await meetings.agenda(carol, "2026-11-24", None) == []
    await meetings.purge_user("alice")
    assert await meetings.agenda(bob, "2026-11-24", None) == []
