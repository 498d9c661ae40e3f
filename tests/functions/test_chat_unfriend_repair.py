"""Ending a friendship while chat is down: the friends operation stands, and repeating it (the
natural retry) removes the pair's direct thread, so two former friends keep no channel."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from switchboard.adapters.chat_local import LocalChatProvider
from switchboard.errors import DependencyUnavailable
from switchboard.runtime import Runtime, set_runtime
from tests.conftest import Client, make_runtime
from tests.proxies import spy, spy_of


@pytest.mark.parametrize(
    ("method", "path", "by"),
    [("DELETE", "/api/friends/bob", "alice"), ("PUT", "/api/blocks/alice", "bob")],
)
async def test_repeating_an_unfriend_or_block_removes_a_thread_chat_kept(
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
        assert local.exists(thread_id)  # chat could not follow yet

        del spy_of(chat).fail["delete_thread"]
        again = await client.request(method, path, headers=client.login(by))

        assert again.status == 204
        assert not local.exists(thread_id)
        for user in ("alice", "bob"):
            listed = await client.request("GET", "/api/threads", headers=client.login(user))
            assert listed.json()["items"] == [], user
    finally:
        set_runtime(None)
        await rt.close()
