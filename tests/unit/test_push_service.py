"""The push service's fan-out with a recording sender: batches of at most 20 user tags, the
starter left out, pages of members read in the background, failures counted and never raised,
and a registration that never waits for any of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.ports import PushInstallation, PushMessage, PushRejected
from switchboard.services.push import PushService, tag_batches, user_tag
from tests.proxies import spy, spy_of

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


KEY = b"k" * 32


def test_tag_batches_hold_at_most_twenty_distinct_users() -> None:
    users = [f"user-{i}" for i in range(45)] + ["user-0"]
    batches = tag_batches(KEY, users)
    assert [len(b) for b in batches] == [20, 20, 5]
    assert [t for b in batches for t in b] == [user_tag(KEY, u) for u in users[:45]]
    assert user_tag(KEY, "alice") != user_tag(KEY, "bob")
    assert "alice" not in user_tag(KEY, "alice")


async def test_user_tags_are_keyed_not_a_plain_hash_of_the_user_id(
    store: SqliteStore, tmp_path: Path
) -> None:
    """Before: `u:` + sha256("bob"), which anyone reading the hub's tags could recompute from a
    guessed user id. Now an HMAC under a random key the server keeps in its store: the same on
    every instance (the first writer wins), different per deployment, never the plain hash."""
    import hashlib

    one, two = PushService(store, RecordingSender()), PushService(store, RecordingSender())
    tag = await one.user_tag("bob")
    assert tag == await two.user_tag("bob")  # one key per deployment, shared by instances
    assert tag != await one.user_tag("alice")
    assert tag.removeprefix("u:") != hashlib.sha256(b"bob").hexdigest()[:40]
    key = await store.read("system", "pushTagKey", "pushTagKey")
    assert key is not None
    assert len(bytes.fromhex(key["key"])) == 32
    assert tag == user_tag(bytes.fromhex(key["key"]), "bob")
    other = SqliteStore(tmp_path / "another-deployment.sqlite")
    try:
        assert await PushService(other, RecordingSender()).user_tag("bob") != tag
    finally:
        await other.close()


async def test_call_started_returns_before_any_send_or_store_operation(
    store: SqliteStore,
) -> None:
    sender = RecordingSender()
    sender.gate = asyncio.Event()
    members = ["alice"] + [f"m{i}" for i in range(41)]

    async def members_of(club_id: str) -> AsyncIterator[str]:
        assert club_id == "chess"
        for member in members:
            yield member

    spied = spy(store)
    push = PushService(spied, sender, members_of=members_of, clock=lambda: NOW)
    await push.call_started("chess", "Chess club", "GID-1", "alice", None)
    # The registration's request is over: nothing was read, written or sent yet.
    assert spy_of(spied).calls == {}
    assert sender.sends == []
    sender.gate.set()
    await push.drain()
    assert [len(tags) for _, tags in sender.sends] == [20, 20, 1]
    assert await push.user_tag("alice") not in {t for _, tags in sender.sends for t in tags}
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
    # Off the request: one index upsert, one member page source, one profile read; and, once
    # per process, the tag key read (created here, the deployment's first use).
    assert spy_of(spied).calls == {"upsert": 1, "read": 2, "create": 1}


async def test_failed_sends_are_counted_and_the_rest_still_go(store: SqliteStore) -> None:
    sender = RecordingSender()
    sender.fail_batches = {0, 1}
    push = PushService(store, sender)
    result = await push.fan_out(PushMessage("t", "b", {}), [f"u{i}" for i in range(60)])
    assert (result.recipients, result.sends, result.failed_sends) == (60, 3, 2)


async def test_a_failing_fan_out_never_reaches_the_registration(store: SqliteStore) -> None:
    async def broken(club_id: str) -> AsyncIterator[str]:
        raise DependencyUnavailable("store")
        yield ""  # pragma: no cover

    push = PushService(store, RecordingSender(), members_of=broken)
    await push.call_started("chess", "Chess", "g", "alice", None)  # does not raise
    await push.drain()  # the failure was logged, not raised


async def test_nobody_else_in_the_club_means_no_send(store: SqliteStore) -> None:
    sender = RecordingSender()
    push = PushService(store, sender)
    await push.call_started("chess", "Chess", "g", "alice", ["alice"])
    await push.drain()
    assert sender.sends == []
