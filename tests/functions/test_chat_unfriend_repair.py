"""Ending a friendship while chat is down: the friends operation stands, the pair's reconciler
fails and is retried, and once chat answers it removes the pair's direct thread, so two former
friends keep no channel (no repeat of the request is needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from switchboard.adapters.chat_local import LocalChatProvider
from switchboard.errors import DependencyUnavailable
from switchboard.runtime import Runtime, set_runtime
from tests.conftest import Client, make_runtime
from tests.integrity import friends as friends_integrity
from tests.proxies import spy, spy_of


@pytest.mark.parametrize(
    ("method", "path", "by"),
    [("DELETE", "/api/friends/bob", "alice"), ("PUT", "/api/blocks/alice", "bob")],
)
async def test_a_thread_chat_could_not_delete_goes_once_chat_answers(
    tmp_path: Path, method: str, path: str, by: str
) -> None:
    local = LocalChatProvider(tmp_path)
    chat = spy(local)
    base = make_runtime(tmp_path)
    rt = Runtime(base.settings, dataclasses.replace(base.adapters, chat_provider=chat))
    set_runtime(rt)
    try:
        client = Client(rt)
        for user in ("alice", "bob"):
            await client.request("GET", "/api/me", headers=client.login(user))
        await client.request("PUT", "/api/friends/bob", headers=client.login("alice"))
        await client.request("PUT", "/api/friends/alice", headers=client.login("bob"))
        opened = await client.request(
            "PUT", "/api/friends/bob/thread", headers=client.login("alice")
        )
        thread_id = opened.json()["threadId"]
        spy_of(chat).fail["delete_thread"] = DependencyUnavailable("chat", retry_after=5)

        first = await client.request(method, path, headers=client.login(by))
        assert first.status == 204  # the friends operation stands
        await rt.reactor.run_due(include_future=True)  # the reconciler fails: retried later
        assert local.exists(thread_id)  # chat could not follow yet
        assert (await rt.reactor.backlog()).pending == 1
        # No access meanwhile: the pair's truth says they are not friends.
        again = await client.request(
            "PUT", "/api/friends/alice/thread", headers=client.login("bob")
        )
        assert again.status == 404

        del spy_of(chat).fail["delete_thread"]
        await rt.reactor.drain()

        assert not local.exists(thread_id)
        for user in ("alice", "bob"):
            listed = await client.request("GET", "/api/threads", headers=client.login(user))
            assert listed.json()["items"] == [], user
        assert await friends_integrity.check(rt.adapters.store, local) == []
    finally:
        set_runtime(None)
        await rt.close()
