"""docs/friends.md's walkthrough over real HTTP: alice befriends bob, bob accepts, alice reads
bob's call-info; then an invite code shared out of band, and a third user who sees none of it."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import DevServerProcess


def test_friends_walkthrough(fresh_devserver: DevServerProcess) -> None:
    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice", "Alice")
    bob = fresh_devserver.login("bob", "Bob")
    carol = fresh_devserver.login("carol", "Carol")
    for who in (alice, bob, carol):
        assert httpx.post(f"{base}/api/token", headers=who).status_code == 200

    sent = httpx.put(f"{base}/api/friends/bob", headers=alice)
    assert sent.json() == {"userId": "bob", "status": "outgoing"}
    incoming = httpx.get(f"{base}/api/friends?status=incoming", headers=bob).json()
    assert [f["userId"] for f in incoming["items"]] == ["alice"]
    assert httpx.put(f"{base}/api/friends/alice", headers=bob).json()["status"] == "accepted"
    friends = httpx.get(f"{base}/api/friends", headers=alice).json()
    bob_acs = httpx.get(f"{base}/api/me", headers=bob).json()["communicationUserId"]
    assert [(f["userId"], f["communicationUserId"]) for f in friends["items"]] == [("bob", bob_acs)]
    info = httpx.get(f"{base}/api/friends/bob/call-info", headers=alice)
    assert info.json() == {"communicationUserId": bob_acs, "pstn": None}
    assert httpx.get(f"{base}/api/friends/bob/call-info", headers=carol).status_code == 404

    code = httpx.post(f"{base}/api/friends/invites", headers=carol).json()["code"]
    redeemed = httpx.post(f"{base}/api/friends/invites/{code}", headers=alice)
    assert redeemed.json() == {"userId": "carol", "displayName": "Carol", "status": "accepted"}
    again = httpx.post(f"{base}/api/friends/invites/{code}", headers=bob)
    assert again.status_code == 404
    names = [
        f["displayName"] for f in httpx.get(f"{base}/api/friends", headers=alice).json()["items"]
    ]
    assert names == ["Bob", "Carol"]

    assert httpx.delete(f"{base}/api/me", headers=bob).status_code == 204
    names = [
        f["displayName"] for f in httpx.get(f"{base}/api/friends", headers=alice).json()["items"]
    ]
    assert names == ["Carol"]
    fresh_devserver.stop()
    assert code not in fresh_devserver.log.read_text()
