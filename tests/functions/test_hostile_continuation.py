"""A continuation token is the caller's to send: whatever is inside it, the paged routes (friends,
threads, a club's members) answer 400 `invalid_input` and change nothing, never a 500."""

from __future__ import annotations

import base64

from tests.conftest import Client


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HOSTILE = [
    # Past the JSON decoder's recursion limit, within the routes' length limit (4,096).
    _token(b"[" * 1_400 + b"]" * 1_400),
    _token(b'{"s":["displayName",false],"i":"a","k":"\\ud800"}'),  # a lone surrogate
    _token(b'{"s":[null,false],"i":"\\udfff"}'),
    _token(b'{"s":["since",true],"i":"x","k":"\\ud800"}'),
    _token(b'{"s":["joinedAt",false],"i":"x","k":"\\ud800"}'),
]


async def test_hostile_tokens_answer_400_on_every_paged_route(client: Client) -> None:
    alice = client.login("alice", "Alice")
    assert (await client.request("GET", "/api/me", headers=alice)).status == 200
    club = await client.request(
        "POST", "/api/clubs", headers=alice, json_body={"name": "Chess", "visibility": "open"}
    )
    assert club.status == 201
    routes = [
        ("/api/friends", {"status": "accepted"}),
        ("/api/threads", {}),
        (f"/api/clubs/{club.json()['clubId']}/members", {}),
    ]
    for path, params in routes:
        for token in HOSTILE:
            answer = await client.request(
                "GET", path, headers=alice, params={**params, "continuation": token}
            )
            assert answer.status == 400, (path, answer.body[:200])
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["code"] == "invalid_input"
