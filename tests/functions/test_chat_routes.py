"""Chat routes through their registered handlers: auth on every route, each user sees only their
own threads, who may open a direct thread, bad input, and the client configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.runtime import set_runtime
from tests.conftest import Client, make_runtime
from tests.proxies import spy_of

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
    assert spy_of(counting_client.runtime.store).calls == {}


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


async def test_a_bad_continuation_is_400_and_changes_nothing(client: Client) -> None:
    resp = await client.request(
        "GET", "/api/threads", headers=client.login("alice"), params={"continuation": "nope"}
    )
    assert resp.status == 400
    assert resp.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("other", ["bob", "alice", "nobody-at-all"])
async def test_a_direct_thread_with_someone_not_a_friend_is_404(client: Client, other: str) -> None:
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
