"""Friends routes through their registered handlers: auth, the wire shapes, a second and third
user who can neither see nor change the first one's relations, bad ids, erase and rename hooks,
and invite codes over the wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.runtime import set_runtime
from tests.conftest import Client, make_runtime
from tests.fakes import store_down
from tests.proxies import spy_of

PROTECTED = [
    ("GET", "/api/friends"),
    ("PUT", "/api/friends/bob"),
    ("DELETE", "/api/friends/bob"),
    ("GET", "/api/friends/bob/call-info"),
    ("PUT", "/api/blocks/bob"),
    ("DELETE", "/api/blocks/bob"),
    ("POST", "/api/friends/invites"),
    ("POST", "/api/friends/invites/AAAAAAAAAAAAAAAAAAAAAA"),
]


@pytest.fixture
async def pstn_client(tmp_path: Path) -> AsyncIterator[Client]:
    rt = make_runtime(tmp_path, PSTN_CALLER_ID="+18005550100")
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


async def _sign_in(client: Client, *names: str) -> list[dict[str, str]]:
    """Each user signs in and gets an ACS identity (their profile exists from then on)."""
    headers = []
    for name in names:
        auth = client.login(name.lower(), name)
        assert (await client.request("POST", "/api/token", headers=auth)).status == 200
        headers.append(auth)
    return headers


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_friends_route_needs_a_caller(
    counting_client: Client, method: str, path: str
) -> None:
    resp = await counting_client.request(method, path)
    assert resp.status == 401
    assert spy_of(counting_client.runtime.adapters.store).calls == {}


async def test_befriend_accept_list_call_info_walkthrough(pstn_client: Client) -> None:
    c = pstn_client
    alice, bob, carol = await _sign_in(c, "Alice", "Bob", "Carol")
    sent = await c.request("PUT", "/api/friends/bob", headers=alice)
    assert (sent.status, sent.json()) == (200, {"userId": "bob", "status": "outgoing"})
    incoming = await c.request("GET", "/api/friends", headers=bob, params={"status": "incoming"})
    (item,) = incoming.json()["items"]
    assert item["userId"] == "alice"
    assert item["communicationUserId"] is None
    accepted = await c.request("PUT", "/api/friends/alice", headers=bob)
    assert accepted.json() == {"userId": "alice", "status": "accepted"}
    listed = (await c.request("GET", "/api/friends", headers=alice)).json()
    assert listed["continuation"] is None
    (friend,) = listed["items"]
    bob_acs = (await c.request("GET", "/api/me", headers=bob)).json()["communicationUserId"]
    assert friend == {
        "userId": "bob",
        "displayName": "Bob",
        "communicationUserId": bob_acs,
        "status": "accepted",
        "since": friend["since"],
    }
    info = await c.request("GET", "/api/friends/bob/call-info", headers=alice)
    assert info.status == 200
    assert info.json() == {"communicationUserId": bob_acs, "pstn": None}  # bob has no number
    # Bob verifies a number (the phone capability writes these fields); alice may dial it.
    profile = await c.runtime.adapters.store.read("users", "bob", "bob")
    assert profile is not None
    await c.runtime.adapters.store.upsert(
        "users", {**profile, "phoneNumber": "+14255550102", "phoneVerified": True}
    )
    info = await c.request("GET", "/api/friends/bob/call-info", headers=alice)
    assert info.json()["pstn"] == {"from": "+18005550100", "to": "+14255550102"}
    # Carol, a third user, sees nothing of it, and cannot read bob's call-info.
    for status in ("accepted", "incoming", "outgoing"):
        mine = await c.request("GET", "/api/friends", headers=carol, params={"status": status})
        assert mine.json()["items"] == []
    denied = await c.request("GET", "/api/friends/bob/call-info", headers=carol)
    assert denied.status == 404
    assert "+1425" not in denied.body.decode()


async def test_others_cannot_change_a_relation(client: Client) -> None:
    alice, bob, carol = await _sign_in(client, "Alice", "Bob", "Carol")
    await client.request("PUT", "/api/friends/bob", headers=alice)
    await client.request("PUT", "/api/friends/alice", headers=bob)
    # Carol's deletes and blocks address only her own relations.
    assert (await client.request("DELETE", "/api/friends/bob", headers=carol)).status == 204
    assert (await client.request("DELETE", "/api/friends/alice", headers=carol)).status == 204
    assert (await client.request("PUT", "/api/blocks/alice", headers=carol)).status == 204
    listed = (await client.request("GET", "/api/friends", headers=alice)).json()["items"]
    assert [f["userId"] for f in listed] == ["bob"]
    assert (await client.request("GET", "/api/friends/bob/call-info", headers=alice)).status == 200


async def test_unknown_and_blocking_users_look_the_same(client: Client) -> None:
    alice, bob = await _sign_in(client, "Alice", "Bob")
    unknown = await client.request("PUT", "/api/friends/nobody", headers=alice)
    assert (await client.request("PUT", "/api/blocks/alice", headers=bob)).status == 204
    blocked = await client.request("PUT", "/api/friends/bob", headers=alice)
    assert unknown.status == blocked.status == 404
    assert unknown.body == blocked.body
    own = await client.request("PUT", "/api/friends/alice", headers=alice)
    assert (own.status, own.json()["code"]) == (400, "invalid_input")
    again = await client.request("PUT", "/api/friends/alice", headers=bob)
    assert (again.status, again.json()["code"]) == (409, "user_blocked")
    assert (await client.request("DELETE", "/api/blocks/alice", headers=bob)).status == 204
    assert (await client.request("PUT", "/api/friends/bob", headers=alice)).status == 200


@pytest.mark.parametrize("bad", ["%20x", "..", "a%2Fb", "x" * 129])
async def test_ids_breaking_the_id_rule_are_400(client: Client, bad: str) -> None:
    (alice,) = await _sign_in(client, "Alice")
    resp = await client.request("PUT", f"/api/friends/{bad}", headers=alice)
    assert resp.status in (400, 404)  # a path the router refuses is 404, else the id rule's 400
    if resp.status == 400:
        assert resp.json()["code"] == "invalid_input"


async def test_list_query_validation(client: Client) -> None:
    (alice,) = await _sign_in(client, "Alice")
    for params in ({"status": "blocked"}, {"pageSize": "501"}, {"pageSize": "0"}, {"x": "1"}):
        resp = await client.request("GET", "/api/friends", headers=alice, params=params)
        assert resp.status == 400, params
    bad_token = await client.request(
        "GET", "/api/friends", headers=alice, params={"continuation": "not-a-token"}
    )
    assert bad_token.status == 400


async def test_rename_and_erase_reach_friends_lists(client: Client) -> None:
    alice, bob = await _sign_in(client, "Alice", "Bob")
    await client.request("PUT", "/api/friends/bob", headers=alice)
    await client.request("PUT", "/api/friends/alice", headers=bob)
    renamed = await client.request(
        "PATCH", "/api/me", headers=alice, json_body={"displayName": "Alice L."}
    )
    assert renamed.status == 200
    (item,) = (await client.request("GET", "/api/friends", headers=bob)).json()["items"]
    assert item["displayName"] == "Alice L."
    assert (await client.request("DELETE", "/api/me", headers=alice)).status == 204
    await client.runtime.reactor.drain()
    assert (await client.request("GET", "/api/friends", headers=bob)).json()["items"] == []
    assert (await client.request("GET", "/api/friends/alice/call-info", headers=bob)).status == 404


async def test_store_down_is_503_with_retry_after(fake_acs_client: Client) -> None:
    alice, _ = await _sign_in(fake_acs_client, "Alice", "Bob")
    spy_of(fake_acs_client.runtime.adapters.store).fail["read_many:friends"] = store_down()
    resp = await fake_acs_client.request("PUT", "/api/friends/bob", headers=alice)
    assert resp.status == 503
    assert resp.headers["retry-after"] == "3"


async def test_invites_over_the_wire(client: Client) -> None:
    alice, bob, carol = await _sign_in(client, "Alice", "Bob", "Carol")
    made = await client.request("POST", "/api/friends/invites", headers=alice)
    assert made.status == 201
    code = made.json()["code"]
    assert set(made.json()) == {"code", "expiresAt"}
    own = await client.request("POST", f"/api/friends/invites/{code}", headers=alice)
    assert own.status == 400
    results = await asyncio.gather(
        client.request("POST", f"/api/friends/invites/{code}", headers=bob),
        client.request("POST", f"/api/friends/invites/{code}", headers=carol),
    )
    assert sorted(r.status for r in results) == [200, 404]
    winner = next(r for r in results if r.status == 200)
    assert winner.json() == {"userId": "alice", "displayName": "Alice", "status": "accepted"}
    loser = next(r for r in results if r.status == 404)
    unknown = await client.request(
        "POST", "/api/friends/invites/AAAAAAAAAAAAAAAAAAAAAA", headers=carol
    )
    assert loser.body == unknown.body
    assert code not in unknown.body.decode()


@pytest.mark.parametrize("blocker", ["owner", "redeemer"])
async def test_a_blocked_user_cannot_redeem_the_blockers_invite_code(
    client: Client, blocker: str
) -> None:
    """Bob holds Alice's code; a block either way, before he redeems it, makes it an unknown
    code to him (the same 404 and body), spends nothing, and Carol still redeems it."""
    alice, bob, carol = await _sign_in(client, "Alice", "Bob", "Carol")
    code = (await client.request("POST", "/api/friends/invites", headers=alice)).json()["code"]
    if blocker == "owner":
        assert (await client.request("PUT", "/api/blocks/bob", headers=alice)).status == 204
    else:
        assert (await client.request("PUT", "/api/blocks/alice", headers=bob)).status == 204
    refused = await client.request("POST", f"/api/friends/invites/{code}", headers=bob)
    unknown = await client.request(
        "POST", "/api/friends/invites/AAAAAAAAAAAAAAAAAAAAAA", headers=bob
    )
    assert refused.status == unknown.status == 404
    assert refused.body == unknown.body
    for who, other in ((alice, "bob"), (bob, "alice")):
        listed = await client.request("GET", "/api/friends", headers=who)
        assert other not in [f["userId"] for f in listed.json()["items"]]
    redeemed = await client.request("POST", f"/api/friends/invites/{code}", headers=carol)
    assert redeemed.status == 200
    assert redeemed.json()["userId"] == "alice"


async def test_rename_costs_the_same_with_one_friend_or_many(counting_client: Client) -> None:
    """PATCH /api/me is O(1) in store operations: friends keep no copy of the name (it was 2
    operations per friend, 10,007 at the 5,000-friend cap). Pinned at 1 and at 40 friends."""
    client = counting_client
    store = spy_of(client.runtime.adapters.store)
    (alice,) = await _sign_in(client, "Alice")

    async def rename(name: str) -> dict[str, int]:
        store.calls.clear()
        resp = await client.request(
            "PATCH", "/api/me", headers=alice, json_body={"displayName": name}
        )
        assert resp.status == 200
        await client.runtime.reactor.drain()
        return dict(store.calls)

    counts: list[dict[str, int]] = []
    for friends in (1, 40):
        for n in range(len(counts) and 1, friends):
            other = client.login(f"f{n}", f"F{n}")
            await client.request("GET", "/api/me", headers=other)
            await client.request("PUT", f"/api/friends/f{n}", headers=alice)
            await client.request("PUT", "/api/friends/alice", headers=other)
        await client.runtime.reactor.drain()
        counts.append(await rename(f"Alice {friends}"))
    assert counts[0] == counts[1]
    # Identity's own read and replace; no work follows (drain's one look at each work shard).
    assert counts[0] == {"read": 1, "replace": 1, "query": 4}
    page = await client.request("GET", "/api/friends", headers=client.login("f5", "F5"))
    assert page.json()["items"][0]["displayName"] == "Alice 40"
