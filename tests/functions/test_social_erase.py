"""DELETE /api/me and the social capabilities: after an erase, nothing friends or chat stores
(friends lists, blocks, invite codes, thread lists, pair and club chat records) names the user."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import Client

SOCIAL = ("friends", "invites", "threads", "system")


async def _ok(client: Client, method: str, path: str, user: str, status: int = 200) -> object:
    resp = await client.request(method, path, headers=client.login(user))
    assert resp.status == status, (method, path, resp.body)
    return resp.json() if resp.body else None


def _mentions(db: Path, *needles: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT container, pk, id, body FROM documents WHERE container IN (?, ?, ?, ?)",
            SOCIAL,
        ).fetchall()
    return [
        (container, pk, id)
        for container, pk, id, body in rows
        if any(n in pk or n in id or n in body for n in needles)
    ]


async def test_erase_leaves_nothing_of_the_user_in_friends_or_chat(
    client: Client, tmp_path: Path
) -> None:
    for user in ("zelda", "bob", "carol", "dave", "eve", "gus"):
        await _ok(client, "GET", "/api/me", user)
    await _ok(client, "POST", "/api/token", "zelda")
    me = await _ok(client, "GET", "/api/me", "zelda")
    assert isinstance(me, dict)
    acs = str(me["communicationUserId"])
    # an accepted friend with a direct thread
    await _ok(client, "PUT", "/api/friends/bob", "zelda")
    await _ok(client, "PUT", "/api/friends/zelda", "bob")
    await _ok(client, "PUT", "/api/friends/bob/thread", "zelda")
    # an outgoing and an incoming request, a block, invite codes (one redeemed)
    await _ok(client, "PUT", "/api/friends/carol", "zelda")
    await _ok(client, "PUT", "/api/friends/zelda", "dave")
    await _ok(client, "PUT", "/api/blocks/eve", "zelda", 204)
    spent = await _ok(client, "POST", "/api/friends/invites", "zelda", 201)
    await _ok(client, "POST", "/api/friends/invites", "zelda", 201)
    assert isinstance(spent, dict)
    await _ok(client, "POST", f"/api/friends/invites/{spent['code']}", "gus")
    # and a code of someone else's that she redeemed (it stays theirs, spent, after her erase)
    hers = await _ok(client, "POST", "/api/friends/invites", "carol", 201)
    assert isinstance(hers, dict)
    await _ok(client, "POST", f"/api/friends/invites/{hers['code']}", "zelda")
    # a club with its thread, another member in it
    club = await client.request(
        "POST",
        "/api/clubs",
        headers=client.login("zelda"),
        json_body={"name": "Chess", "visibility": "open"},
    )
    club_id = club.json()["clubId"]
    await _ok(client, "POST", f"/api/clubs/{club_id}/join", "bob")
    db = tmp_path / "switchboard.sqlite"
    assert _mentions(db, "zelda", "Zelda", acs)

    await _ok(client, "DELETE", "/api/me", "zelda", 204)
    await client.runtime.reactor.drain()

    assert _mentions(db, "zelda", "Zelda", acs) == []
    for user in ("bob", "carol", "dave", "gus"):
        for status in ("accepted", "incoming", "outgoing"):
            listed = await client.request(
                "GET", "/api/friends", headers=client.login(user), params={"status": status}
            )
            assert listed.json()["items"] == [], (user, status)
        threads = await client.request("GET", "/api/threads", headers=client.login(user))
        assert all(t["userId"] != "zelda" for t in threads.json()["items"])
