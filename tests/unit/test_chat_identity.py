"""The controller's chat service identity: created once (even by racing first uses), kept in the
`system` container, and each token minted for it through the identity port with the chat scope."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.services.chat_identity import SERVICE_IDENTITY_KEY, ChatServiceIdentity
from tests.fakes import FakeIdentityProvider
from tests.proxies import spy, spy_of


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "s.sqlite")
    yield s
    await s.close()


async def test_created_once_then_only_tokens_are_minted(store: SqliteStore) -> None:
    acs = spy(FakeIdentityProvider())
    identity = ChatServiceIdentity(store, acs)

    first_id, first = await identity.token()
    second_id, second = await identity.token()

    assert first_id == second_id
    assert first.token != second.token
    assert spy_of(acs).calls == {"create_user_and_token": 1, "issue_token": 1}
    doc = await store.read("system", SERVICE_IDENTITY_KEY, SERVICE_IDENTITY_KEY)
    assert doc is not None
    assert doc["communicationUserId"] == first_id
    assert await identity.communication_user_id() == first_id


async def test_racing_first_uses_end_with_one_identity(store: SqliteStore) -> None:
    fake = FakeIdentityProvider(yield_between=True)
    identity = ChatServiceIdentity(store, fake)

    results = await asyncio.gather(*(identity.token() for _ in range(4)))

    assert len({acs_id for acs_id, _ in results}) == 1
    assert list(fake.identities) == [results[0][0]]  # the losers deleted theirs


async def test_an_identity_deleted_in_acs_is_replaced(store: SqliteStore) -> None:
    fake = FakeIdentityProvider()
    identity = ChatServiceIdentity(store, fake)
    old, _ = await identity.token()
    await fake.delete_user(old)

    new, issued = await identity.token()

    assert new != old
    assert fake.token_valid(issued.token)
    assert await identity.communication_user_id() == new
