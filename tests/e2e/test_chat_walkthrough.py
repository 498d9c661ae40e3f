"""docs/chat.md's walkthrough over real HTTP: alice and bob, friends, open their direct thread
and see it in GET /api/threads; it survives a restart; carol sees none of it; client-config."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import DevServerProcess


def test_chat_walkthrough(fresh_devserver: DevServerProcess) -> None:
    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice", "Alice")
    bob = fresh_devserver.login("bob", "Bob")
    carol = fresh_devserver.login("carol", "Carol")
    for who in (alice, bob, carol):
        assert httpx.get(f"{base}/api/me", headers=who).status_code == 200
    assert httpx.put(f"{base}/api/friends/bob", headers=alice).status_code == 200
    assert httpx.put(f"{base}/api/friends/alice", headers=bob).json()["status"] == "accepted"

    opened = httpx.put(f"{base}/api/friends/bob/thread", headers=alice)
    assert opened.status_code == 200
    thread = opened.json()
    assert thread["kind"] == "direct"
    assert thread["topic"] == "Alice & Bob"
    assert thread["threadId"].startswith("19:")
    listed = httpx.get(f"{base}/api/threads", headers=bob).json()
    assert listed == {"items": [{**thread, "userId": "alice"}], "continuation": None}
    assert httpx.put(f"{base}/api/friends/alice/thread", headers=carol).status_code == 404
    assert httpx.get(f"{base}/api/threads", headers=carol).json()["items"] == []

    fresh_devserver.restart()
    again = httpx.put(f"{base}/api/friends/alice/thread", headers=bob)
    assert again.json()["threadId"] == thread["threadId"]
    config = httpx.get(f"{base}/api/client-config", headers=alice).json()
    assert config == {
        "acsEndpoint": "local://embedded",
        "tokenScopes": ["chat", "voip"],
        "pstnCallerId": None,
    }
