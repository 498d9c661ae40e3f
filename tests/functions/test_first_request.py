"""A user exists from their first authenticated request (docs/identity.md), whatever the route: the
profile is created then, once per process, and a request refused for bad input creates nothing."""

from __future__ import annotations

from tests.conftest import Client
from tests.proxies import spy_of


async def test_any_route_signs_a_user_in_and_others_can_then_find_them(client: Client) -> None:
    alice = client.login("alice", "Alice")
    bob = client.login("bob", "Bob")
    # Bob's first request is a friends list read; he never asked for a token or his profile.
    assert (await client.request("GET", "/api/friends", headers=bob)).status == 200
    profile = await client.runtime.adapters.store.read("users", "bob", "bob")
    assert profile is not None
    assert profile["displayName"] == "Bob"  # from the token's name claim
    assert profile["communicationUserId"] is None  # an ACS identity only with a first token
    # So alice can befriend him: he has signed in.
    resp = await client.request("PUT", "/api/friends/bob", headers=alice)
    assert resp.status == 200, resp.json()


async def test_a_refused_request_creates_no_profile(client: Client) -> None:
    carol = client.login("carol", "Carol")
    resp = await client.request("GET", "/api/friends", headers=carol, params={"status": "nonsense"})
    assert resp.status == 400
    assert await client.runtime.adapters.store.read("users", "carol", "carol") is None


async def test_the_profile_is_checked_once_per_process(counting_client: Client) -> None:
    dave = counting_client.login("dave", "Dave")
    spy = spy_of(counting_client.runtime.adapters.store)
    assert (await counting_client.request("GET", "/api/friends", headers=dave)).status == 200
    # The first request registers the user: the profile and the erasure record read (is the
    # user being erased?), one create.
    assert spy.calls["read"] == 2
    assert spy.calls["create"] == 1
    spy.calls.clear()
    assert (await counting_client.request("GET", "/api/friends", headers=dave)).status == 200
    assert spy.calls == {"query": 1}  # later ones pay nothing for it


async def test_an_erased_user_is_registered_again_by_their_next_request(client: Client) -> None:
    erin = client.login("erin", "Erin")
    assert (await client.request("GET", "/api/friends", headers=erin)).status == 200
    assert (await client.request("DELETE", "/api/me", headers=erin)).status == 204
    assert await client.runtime.adapters.store.read("users", "erin", "erin") is None
    # While the erasure's purge runs, her requests create nothing (and say so where they would
    # create her: her profile, a token)...
    assert (await client.request("GET", "/api/friends", headers=erin)).status == 200
    assert await client.runtime.adapters.store.read("users", "erin", "erin") is None
    for method, path in (("GET", "/api/me"), ("POST", "/api/token"), ("POST", "/api/token/revoke")):
        refused = await client.request(method, path, headers=erin)
        assert refused.status == 409  # a state of her account for seconds, not an outage
        assert refused.json()["code"] == "erasure_in_progress"
        assert refused.headers["retry-after"] == "2"
    assert await client.runtime.adapters.store.read("users", "erin", "erin") is None
    # ...then her next request signs her in afresh.
    await client.runtime.reactor.drain()
    assert (await client.request("GET", "/api/friends", headers=erin)).status == 200
    assert await client.runtime.adapters.store.read("users", "erin", "erin") is not None
