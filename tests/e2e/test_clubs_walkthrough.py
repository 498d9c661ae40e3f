"""docs/clubs.md's walkthrough over real HTTP: alice creates a club, bob joins, alice registers
the group call, bob reads its id; a second registration is told to join it; carol, an outsider,
sees nothing of an invite club; the club survives a restart."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import DevServerProcess

CALL = "5b2c9c3e-0f1a-4d7e-9a44-8e2b51c0d6a1"


def test_clubs_walkthrough(fresh_devserver: DevServerProcess) -> None:
    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice", "Alice")
    bob = fresh_devserver.login("bob", "Bob")
    carol = fresh_devserver.login("carol", "Carol")
    created = httpx.post(
        f"{base}/api/clubs", headers=alice, json={"name": "Chess", "visibility": "open"}
    )
    assert created.status_code == 201
    club = created.json()["clubId"]
    joined = httpx.post(f"{base}/api/clubs/{club}/join", headers=bob)
    assert joined.status_code == 200
    assert joined.json()["role"] == "member"
    put = httpx.put(f"{base}/api/clubs/{club}/call", headers=alice, json={"groupCallId": CALL})
    assert put.status_code == 201
    got = httpx.get(f"{base}/api/clubs/{club}/call", headers=bob)
    assert got.json()["groupCallId"] == CALL
    other = httpx.put(
        f"{base}/api/clubs/{club}/call",
        headers=bob,
        json={"groupCallId": "11111111-2222-4333-8444-555555555555"},
    )
    assert other.status_code == 409
    assert other.json()["groupCallId"] == CALL

    fresh_devserver.restart()
    listed = httpx.get(f"{base}/api/clubs", headers=bob).json()["items"]
    assert [(c["clubId"], c["activeCall"]["groupCallId"]) for c in listed] == [(club, CALL)]

    secret = httpx.post(
        f"{base}/api/clubs", headers=alice, json={"name": "Board", "visibility": "invite"}
    ).json()["clubId"]
    for method, path in [("GET", ""), ("GET", "/call"), ("POST", "/join")]:
        resp = httpx.request(method, f"{base}/api/clubs/{secret}{path}", headers=carol)
        assert resp.status_code == 404
    assert httpx.get(f"{base}/api/clubs", headers=carol).json() == {"items": []}
