"""Chat routes through their registered handlers: auth on every route, each user sees only their
own threads, who may open a direct thread, bad input, and the client configuration."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from switchboard.adapters.chat_local import LocalChatProvider
from switchboard.errors import DependencyUnavailable
from switchboard.runtime import Runtime, set_runtime
from tests.conftest import Client, make_runtime
from tests.proxies import spy, spy_of

PROTECTED = [
    ("GET", "/api/threads"),
    ("PUT", "/api/friends/bob/thread"),
    ("GET", "/api/client-config"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_chat_route_needs_a_valid_token(
    counting_client: Client, method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer a.b.c"}):
        resp = await counting_client.request(method, path, headers=headers)
        assert resp.status == 401
        assert resp.json()["code"] == "unauthenticated"
    assert spy_of(counting_client.runtime.adapters.store).calls == {}


async def test_each_user_sees_only_their_own_threads(client: Client) -> None:
    chat = client.runtime.chat
    await chat.meeting_listed("m1", "Standup", "19:m1@thread.v2", ["alice"])
    await chat.meeting_listed("m2", "Review", "19:m2@thread.v2", ["alice", "bob"])

    alice = await client.request("GET", "/api/threads", headers=client.login("alice"))
    bob = await client.request("GET", "/api/threads", headers=client.login("bob"))
    carol = await client.request("GET", "/api/threads", headers=client.login("carol"))

    assert alice.status == bob.status == carol.status == 200
    assert [t["meetingId"] for t in alice.json()["items"]] == ["m2", "m1"]
    assert bob.json()["items"] == [
        {
            "threadId": "19:m2@thread.v2",
            "kind": "meeting",
            "topic": "Review",
            "clubId": None,
            "meetingId": "m2",
            "userId": None,
        }
    ]
    assert carol.json() == {"items": [], "continuation": None}


async def test_threads_are_paged_with_page_size_and_continuation(client: Client) -> None:
    """The paging vocabulary of every paged route: `pageSize`, and `continuation` back."""
    chat = client.runtime.chat
    for n in range(3):
        await chat.meeting_listed(f"m{n}", f"Meeting {n}", f"19:m{n}@thread.v2", ["alice"])
    alice = client.login("alice")
    seen: list[str] = []
    params: dict[str, str] = {"pageSize": "2"}
    while True:
        page = await client.request("GET", "/api/threads", headers=alice, params=params)
        assert page.status == 200
        assert len(page.json()["items"]) <= 2
        seen += [t["meetingId"] for t in page.json()["items"]]
        if page.json()["continuation"] is None:
            break
        params = {"pageSize": "2", "continuation": page.json()["continuation"]}
    assert seen == ["m2", "m1", "m0"]
    too_big = await client.request("GET", "/api/threads", headers=alice, params={"pageSize": "101"})
    assert too_big.status == 400


async def test_a_bad_continuation_is_400_and_changes_nothing(client: Client) -> None:
    resp = await client.request(
        "GET", "/api/threads", headers=client.login("alice"), params={"continuation": "nope"}
    )
    assert resp.status == 400
    assert resp.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("other", ["bob", "alice", "nobody-at-all"])
async def test_a_direct_thread_with_someone_never_befriended_is_404(
    client: Client, other: str
) -> None:
    await client.request("GET", "/api/me", headers=client.login("bob"))
    resp = await client.request(
        "PUT", f"/api/friends/{other}/thread", headers=client.login("alice")
    )
    assert resp.status == 404
    assert resp.json()["code"] == "not_found"
    listed = await client.request("GET", "/api/threads", headers=client.login("alice"))
    assert listed.json()["items"] == []


async def test_a_bad_user_id_in_the_path_is_400(client: Client) -> None:
    resp = await client.request("PUT", "/api/friends/bob /thread", headers=client.login("alice"))
    assert resp.status == 400
    assert resp.json()["field"] == "userId"


async def test_client_config_in_embedded_mode_says_it_is_local(client: Client) -> None:
    resp = await client.request("GET", "/api/client-config", headers=client.login("alice"))
    assert resp.status == 200
    assert resp.json() == {
        "acsEndpoint": "local://embedded",
        "tokenScopes": ["chat", "voip"],
        "pstnCallerId": None,
    }


async def test_client_config_names_the_acs_endpoint_never_the_key(tmp_path: Path) -> None:
    key = "c2VjcmV0LWtleS1uZXZlci1zaG93bg=="
    rt = make_runtime(
        tmp_path,
        ACS_CONNECTION_STRING=f"endpoint=https://contoso.communication.azure.com/;accesskey={key}",
        TOKEN_SCOPES="chat.join.limited,voip",
        PSTN_CALLER_ID="+18005550100",
    )
    set_runtime(rt)
    try:
        client = Client(rt)
        resp = await client.request("GET", "/api/client-config", headers=client.login("alice"))
    finally:
        set_runtime(None)
        await rt.close()
    assert resp.status == 200
    assert resp.json() == {
        "acsEndpoint": "https://contoso.communication.azure.com/",
        "tokenScopes": ["chat.join.limited", "voip"],
        "pstnCallerId": "+18005550100",
    }
    assert key not in resp.body.decode()


async def signed_up(client: Client, *users: str) -> None:
    for user in users:
        assert (await client.request("GET", "/api/me", headers=client.login(user))).status == 200


async def befriend(client: Client, a: str, b: str) -> None:
    await signed_up(client, a, b)
    assert (await client.request("PUT", f"/api/friends/{b}", headers=client.login(a))).status == 200
    accepted = await client.request("PUT", f"/api/friends/{a}", headers=client.login(b))
    assert accepted.json()["status"] == "accepted"


async def test_friends_open_their_thread_outsiders_and_pending_requests_do_not(
    client: Client,
) -> None:
    await befriend(client, "alice", "bob")
    # carol asked dave, who has not accepted: not friends yet
    await signed_up(client, "carol", "dave", "eve")
    await client.request("PUT", "/api/friends/dave", headers=client.login("carol"))

    opened = await client.request("PUT", "/api/friends/bob/thread", headers=client.login("alice"))
    again = await client.request("PUT", "/api/friends/alice/thread", headers=client.login("bob"))
    outsider = await client.request("PUT", "/api/friends/alice/thread", headers=client.login("eve"))
    pending = await client.request("PUT", "/api/friends/dave/thread", headers=client.login("carol"))

    assert opened.status == again.status == 200
    assert opened.json()["threadId"] == again.json()["threadId"]
    assert opened.json()["kind"] == "direct"
    assert opened.json()["userId"] == "bob"
    assert again.json()["userId"] == "alice"
    assert outsider.status == pending.status == 404
    for user, expected in (("alice", 1), ("bob", 1), ("eve", 0), ("carol", 0), ("dave", 0)):
        listed = await client.request("GET", "/api/threads", headers=client.login(user))
        assert len(listed.json()["items"]) == expected, user


async def test_concurrent_first_calls_from_both_sides_make_one_thread(client: Client) -> None:
    await befriend(client, "alice", "bob")
    responses = await asyncio.gather(
        *(
            client.request("PUT", f"/api/friends/{other}/thread", headers=client.login(me))
            for me, other in [("alice", "bob"), ("bob", "alice")] * 3
        )
    )
    assert {r.status for r in responses} == {200}
    assert len({r.json()["threadId"] for r in responses}) == 1


@pytest.mark.parametrize(
    ("method", "path", "by"),
    [
        ("DELETE", "/api/friends/bob", "alice"),
        ("DELETE", "/api/friends/alice", "bob"),
        ("PUT", "/api/blocks/alice", "bob"),
        ("DELETE", "/api/me", "bob"),
    ],
)
async def test_unfriend_block_or_erase_removes_the_pairs_thread(
    client: Client, tmp_path: Path, method: str, path: str, by: str
) -> None:
    await befriend(client, "alice", "bob")
    opened = await client.request("PUT", "/api/friends/bob/thread", headers=client.login("alice"))
    thread_id = opened.json()["threadId"]
    local = client.runtime.chat_provider
    assert isinstance(local, LocalChatProvider)
    assert local.exists(thread_id)

    done = await client.request(method, path, headers=client.login(by))

    assert done.status in (200, 204)
    await client.runtime.reactor.drain()
    assert not local.exists(thread_id)
    listed = await client.request("GET", "/api/threads", headers=client.login("alice"))
    assert listed.json()["items"] == []
    again = await client.request("PUT", "/api/friends/bob/thread", headers=client.login("alice"))
    assert again.status == 404


async def test_chat_down_is_503_with_retry_after_and_nothing_listed(tmp_path: Path) -> None:
    chat = spy(LocalChatProvider(tmp_path))
    rt = make_runtime(tmp_path)
    rt = Runtime(rt.settings, dataclasses.replace(rt.adapters, chat_provider=chat))
    set_runtime(rt)
    try:
        client = Client(rt)
        await befriend(client, "alice", "bob")
        spy_of(chat).fail["create_thread"] = DependencyUnavailable("chat", retry_after=9)
        down = await client.request("PUT", "/api/friends/bob/thread", headers=client.login("alice"))
        assert down.status == 503
        assert down.headers["retry-after"] == "9"
        listed = await client.request("GET", "/api/threads", headers=client.login("alice"))
        assert listed.json()["items"] == []
        del spy_of(chat).fail["create_thread"]
        up = await client.request("PUT", "/api/friends/alice/thread", headers=client.login("bob"))
        assert up.status == 200
    finally:
        set_runtime(None)
        await rt.close()
