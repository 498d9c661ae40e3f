"""The push service's fan-out with a recording sender: batches of at most 20 user tags, the
starter left out, member pages streamed into sends by the calls reconciler, failures counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.ports import PushInstallation, PushMessage, PushRejected
from switchboard.services.calls import CallsService
from switchboard.services.clubs import ActiveCallInfo
from switchboard.services.hooks import ProfileInfo
from switchboard.services.push import PushService, tag_batches, user_tag
from switchboard.services.reactions import Work

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class RecordingSender:
    def __init__(self) -> None:
        self.sends: list[tuple[PushMessage, list[str]]] = []
        self.gate: asyncio.Event | None = None
        self.fail_batches: set[int] = set()

    async def put_installation(self, installation: PushInstallation) -> None: ...

    async def update_push_channel(self, installation_id: str, push_channel: str) -> None: ...

    async def delete_installation(self, installation_id: str) -> None: ...

    async def send(self, message: PushMessage, tags: Sequence[str]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        index = len(self.sends)
        self.sends.append((message, list(tags)))
        if index in self.fail_batches:
            raise PushRejected("quota") if index % 2 else DependencyUnavailable("push")

    async def close(self) -> None: ...


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "s.sqlite")
    await s.create(
        "users",
        {"id": "alice", "pk": "alice", "userId": "alice", "displayName": "Alice"},
    )
    yield s
    await s.close()


def test_tag_batches_hold_at_most_twenty_distinct_users() -> None:
    users = [f"user-{i}" for i in range(45)] + ["user-0"]
    batches = tag_batches(users)
    assert [len(b) for b in batches] == [20, 20, 5]
    assert [t for b in batches for t in b] == [user_tag(u) for u in users[:45]]
    assert user_tag("alice") != user_tag("bob")
    assert "alice" not in user_tag("alice")


class Registry:
    """A club whose members are listed in pages of the size asked for."""

    def __init__(self, members: list[str], started_at: datetime) -> None:
        self.members = members
        self.call = ActiveCallInfo("chess", "Chess club", "gid-1", "alice", started_at)

    async def active_call(self, club_id: str) -> ActiveCallInfo | None:
        return self.call

    async def member_page(
        self, club_id: str, continuation: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        start = int(continuation or 0)
        more = start + limit < len(self.members)
        return self.members[start : start + limit], str(start + limit) if more else None

    async def end_call_if_current(
        self, club_id: str, group_call_id: str, ended_at: datetime | None = None
    ) -> bool:
        return False


class Names:
    async def get_many(self, user_ids: Sequence[str]) -> dict[str, ProfileInfo]:
        return {u: ProfileInfo(u, u.title(), None, "g") for u in user_ids if u == "alice"}


def calls_service(store: SqliteStore, sender: RecordingSender, members: list[str]) -> CallsService:
    now = datetime.now(UTC)
    return CallsService(
        store,
        registry=Registry(members, now),
        work=Work(store),
        profiles=Names(),
        pushes=PushService(store, sender),
        clock=lambda: now,
    )


async def test_the_call_reconciler_pushes_every_other_member_in_batches(
    store: SqliteStore,
) -> None:
    sender = RecordingSender()
    members = ["alice"] + [f"m{i}" for i in range(141)]
    await calls_service(store, sender, members).reconcile_call("chess")
    # Pages of members streamed into sends of 20 users: the starter left out.
    assert [len(tags) for _, tags in sender.sends] == [20] * 7 + [1]
    assert user_tag("alice") not in {t for _, tags in sender.sends for t in tags}
    message = sender.sends[0][0]
    assert message.title == "Alice started a call"
    assert message.body == "in Chess club"
    assert message.data == {
        "kind": "clubCall",
        "clubId": "chess",
        "groupCallId": "gid-1",
        "startedBy": "alice",
        "startedByName": "Alice",
    }


async def test_nobody_else_in_the_club_means_no_send(store: SqliteStore) -> None:
    sender = RecordingSender()
    await calls_service(store, sender, ["alice"]).reconcile_call("chess")
    assert sender.sends == []


async def test_failed_sends_are_counted_and_the_rest_still_go(store: SqliteStore) -> None:
    sender = RecordingSender()
    sender.fail_batches = {0, 1}
    push = PushService(store, sender)
    result = await push.fan_out(PushMessage("t", "b", {}), [f"u{i}" for i in range(60)])
    assert (result.recipients, result.sends, result.failed_sends) == (60, 3, 2)
