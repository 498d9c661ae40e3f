"""Club routes through their registered handlers: every route as the owner, a member and an
outsider, for open and invite clubs; the call registry's 409; bad input; costs at the store port."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client
from tests.proxies import spy_of

CALL_A = "3f0c1a52-7f7e-4c55-9b43-0b1f3f5a6e01"
CALL_B = "9d2e6b71-1c3a-4f0e-8a55-5e6f7a8b9c02"
NO_CLUB = "0123456789abcdef0123456789abcdef"

ROUTES = [
    ("POST", "/api/clubs"),
    ("GET", "/api/clubs"),
    ("GET", f"/api/clubs/{NO_CLUB}"),
    ("DELETE", f"/api/clubs/{NO_CLUB}"),
    ("POST", f"/api/clubs/{NO_CLUB}/join"),
    ("GET", f"/api/clubs/{NO_CLUB}/members"),
    ("PUT", f"/api/clubs/{NO_CLUB}/members/bob"),
    ("DELETE", f"/api/clubs/{NO_CLUB}/members/bob"),
    ("PUT", f"/api/clubs/{NO_CLUB}/call"),
    ("GET", f"/api/clubs/{NO_CLUB}/call"),
    ("DELETE", f"/api/clubs/{NO_CLUB}/call"),
    ("GET", "/api/me/club-invitations"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_club_route_needs_a_caller(
    counting_client: Client, method: str, path: str
) -> None:
    resp = await counting_client.request(method, path, json_body={"groupCallId": CALL_A})
    assert resp.status == 401
    assert spy_of(counting_client.runtime.adapters.store).calls == {}


async def _users(client: Client, *names: str) -> list[dict[str, str]]:
    """Signed-in users with profiles and ACS identities (as after their first token)."""
    headers = []
    for name in names:
        h = client.login(name, name.title())
        assert (await client.request("POST", "/api/token", headers=h)).status == 200
        headers.append(h)
    return headers


async def _club(client: Client, owner: dict[str, str], visibility: str) -> str:
    resp = await client.request(
        "POST", "/api/clubs", headers=owner, json_body={"name": "Chess", "visibility": visibility}
    )
    assert resp.status == 201, resp.body
    return str(resp.json()["clubId"])


async def _member(
    client: Client, club: str, owner: dict[str, str], who: dict[str, str], user_id: str
) -> None:
    joined = await client.request("POST", f"/api/clubs/{club}/join", headers=who)
    if joined.status == 404:  # an invite club: the owner invites them, they accept
        invited = await client.request("PUT", f"/api/clubs/{club}/members/{user_id}", headers=owner)
        assert invited.status == 200, invited.body
        assert invited.json() == {"userId": user_id, "role": "member", "status": "invited"}
        joined = await client.request("POST", f"/api/clubs/{club}/join", headers=who)
    assert joined.status == 200, joined.body
    assert joined.json()["role"] == "member"
    await client.runtime.reactor.drain()


@pytest.mark.parametrize("visibility", ["open", "invite"])
async def test_owner_member_and_outsider(client: Client, visibility: str) -> None:
    alice, bob, carol = await _users(client, "alice", "bob", "carol")
    created = await client.request(
        "POST", "/api/clubs", headers=alice, json_body={"name": " Chess ", "visibility": visibility}
    )
    assert created.status == 201
    club = created.json()
    assert club | {"clubId": "x"} == {
        "clubId": "x",
        "name": "Chess",
        "ownerId": "alice",
        "visibility": visibility,
        "memberCount": 1,
        "role": "owner",
        "activeCall": None,
        "chatThreadId": None,
    }
    cid = club["clubId"]
    base = f"/api/clubs/{cid}"
    invite = visibility == "invite"

    # The outsider: on an invite club, 404 everywhere, exactly as for a club that does not exist.
    outsider_answers = {
        ("GET", base): 404 if invite else 200,
        ("GET", f"{base}/call"): 404 if invite else 403,
        ("PUT", f"{base}/call"): 404 if invite else 403,
        ("DELETE", f"{base}/call"): 404 if invite else 403,
        ("GET", f"{base}/members"): 404 if invite else 403,
        ("PUT", f"{base}/members/carol"): 404 if invite else 403,
        ("DELETE", f"{base}/members/alice"): 404 if invite else 403,
        ("DELETE", base): 404 if invite else 403,
    }
    for (method, path), status in outsider_answers.items():
        resp = await client.request(method, path, headers=carol, json_body={"groupCallId": CALL_B})
        assert resp.status == status, (method, path, resp.body)
        if invite:
            missing = await client.request(
                method,
                path.replace(cid, NO_CLUB),
                headers=carol,
                json_body={"groupCallId": CALL_B},
            )
            assert (missing.status, missing.json()) == (resp.status, resp.json())
    if not invite:
        seen = (await client.request("GET", base, headers=carol)).json()
        assert seen["role"] is None
        assert seen["activeCall"] is None

    # Bob becomes a member: by joining an open club, by the owner adding him to an invite club.
    await _member(client, cid, alice, bob, "bob")
    again = await client.request("POST", f"{base}/join", headers=bob)
    assert again.status == 200  # idempotent for a member, either kind of club
    assert (await client.request("GET", base, headers=alice)).json()["memberCount"] == 2

    # A member registers the call; the owner's second registration is told to join it.
    put = await client.request(
        "PUT", f"{base}/call", headers=bob, json_body={"groupCallId": CALL_A}
    )
    assert put.status == 201
    assert put.json()["groupCallId"] == CALL_A
    assert put.json()["startedBy"] == "bob"
    clash = await client.request(
        "PUT", f"{base}/call", headers=alice, json_body={"groupCallId": CALL_B}
    )
    assert clash.status == 409
    assert clash.json()["code"] == "call_active"
    assert clash.json()["groupCallId"] == CALL_A
    for who in (alice, bob):
        got = await client.request("GET", f"{base}/call", headers=who)
        assert got.status == 200
        assert got.json()["groupCallId"] == CALL_A
        listed = (await client.request("GET", "/api/clubs", headers=who)).json()["items"]
        assert [(c["clubId"], c["activeCall"]["groupCallId"]) for c in listed] == [(cid, CALL_A)]
    assert (await client.request("GET", "/api/clubs", headers=carol)).json() == {"items": []}
    outsider_view = await client.request("GET", base, headers=carol)
    assert outsider_view.status == (404 if invite else 200)
    if not invite:
        assert outsider_view.json()["activeCall"] is None  # the call is for members only

    # Members list: names from the profiles, owner first; an ACS id only for the caller (and
    # the caller's accepted friends: none here).
    members = (await client.request("GET", f"{base}/members", headers=bob)).json()
    assert [(m["userId"], m["displayName"], m["role"], m["status"]) for m in members["items"]] == [
        ("alice", "Alice", "owner", "member"),
        ("bob", "Bob", "member", "member"),
    ]
    acs_ids = [m["communicationUserId"] for m in members["items"]]
    assert acs_ids[0] is None
    assert acs_ids[1].startswith("8:acs:")

    # A member is not the owner.
    for method, path in [("DELETE", base), ("PUT", f"{base}/members/carol")]:
        resp = await client.request(method, path, headers=bob)
        assert (resp.status, resp.json()["code"]) == (403, "not_club_owner")
    resp = await client.request("DELETE", f"{base}/members/alice", headers=bob)
    assert resp.status == 403

    # Bob leaves: the call is out of his reach at once, and the club off his list.
    assert (await client.request("DELETE", f"{base}/members/bob", headers=bob)).status == 204
    assert (await client.request("GET", f"{base}/call", headers=bob)).status == (
        404 if invite else 403
    )
    assert (await client.request("GET", "/api/clubs", headers=bob)).json() == {"items": []}
    await client.runtime.reactor.drain()
    assert (await client.request("GET", base, headers=alice)).json()["memberCount"] == 1
    again_leave = await client.request("DELETE", f"{base}/members/bob", headers=bob)
    assert again_leave.status == (404 if invite else 403)

    # Any member ends the call; the owner deletes the club.
    assert (await client.request("DELETE", f"{base}/call", headers=alice)).status == 204
    no_call = await client.request("GET", f"{base}/call", headers=alice)
    assert (no_call.status, no_call.json()["code"]) == (404, "no_active_call")
    assert (await client.request("DELETE", base, headers=alice)).status == 204
    for who in (alice, bob, carol):
        assert (await client.request("GET", base, headers=who)).status == 404
        assert (await client.request("GET", "/api/clubs", headers=who)).json() == {"items": []}
    await client.runtime.reactor.drain()
    assert (await client.runtime.adapters.store.query("clubs", cid)).items == []


async def test_owner_removes_a_member_and_adds_only_known_users(client: Client) -> None:
    alice, bob = await _users(client, "alice", "bob")
    cid = await _club(client, alice, "invite")
    unknown = await client.request("PUT", f"/api/clubs/{cid}/members/nobody", headers=alice)
    assert unknown.status == 404
    await _member(client, cid, alice, bob, "bob")
    await client.request(
        "PUT", f"/api/clubs/{cid}/call", headers=bob, json_body={"groupCallId": CALL_A}
    )
    assert (
        await client.request("DELETE", f"/api/clubs/{cid}/members/bob", headers=alice)
    ).status == 204
    assert (await client.request("GET", f"/api/clubs/{cid}/call", headers=bob)).status == 404
    # Removing someone who is not a member is done already.
    assert (
        await client.request("DELETE", f"/api/clubs/{cid}/members/bob", headers=alice)
    ).status == 204


async def test_owner_leaving_hands_over_and_the_last_member_deletes(client: Client) -> None:
    alice, bob, carol = await _users(client, "alice", "bob", "carol")
    cid = await _club(client, alice, "open")
    await _member(client, cid, alice, bob, "bob")
    await _member(client, cid, alice, carol, "carol")
    assert (
        await client.request("DELETE", f"/api/clubs/{cid}/members/alice", headers=alice)
    ).status == 204
    club = (await client.request("GET", f"/api/clubs/{cid}", headers=bob)).json()
    assert (club["ownerId"], club["role"]) == ("bob", "owner")  # at once
    await client.runtime.reactor.drain()
    club = (await client.request("GET", f"/api/clubs/{cid}", headers=bob)).json()
    assert (club["ownerId"], club["memberCount"], club["role"]) == ("bob", 2, "owner")
    assert (
        await client.request("DELETE", f"/api/clubs/{cid}/members/carol", headers=carol)
    ).status == 204
    assert (
        await client.request("DELETE", f"/api/clubs/{cid}/members/bob", headers=bob)
    ).status == 204
    assert (await client.request("GET", f"/api/clubs/{cid}", headers=bob)).status == 404
    await client.runtime.reactor.drain()
    # No document of the club is left behind.
    assert (await client.runtime.adapters.store.query("clubs", cid)).items == []


async def test_erasing_a_user_leaves_their_clubs(client: Client) -> None:
    alice, bob = await _users(client, "alice", "bob")
    shared = await _club(client, alice, "invite")
    alone = await _club(client, alice, "open")
    await _member(client, shared, alice, bob, "bob")
    assert (await client.request("DELETE", "/api/me", headers=alice)).status == 204
    await client.runtime.reactor.drain()
    club = (await client.request("GET", f"/api/clubs/{shared}", headers=bob)).json()
    assert (club["ownerId"], club["memberCount"]) == ("bob", 1)
    assert (await client.request("GET", f"/api/clubs/{alone}", headers=bob)).status == 404
    assert (await client.runtime.adapters.store.query("memberships", "alice")).items == []


async def test_invitations_over_http_with_a_second_and_third_user(client: Client) -> None:
    """Alice invites Bob. Carol, a third user, sees nothing of it, cannot accept or decline it,
    and is not told the invitees; an unknown user and one who blocked Alice get one answer."""
    alice, bob, carol, dora = await _users(client, "alice", "bob", "carol", "dora")
    cid = await _club(client, alice, "invite")
    base = f"/api/clubs/{cid}"
    invited = await client.request("PUT", f"{base}/members/bob", headers=alice)
    assert (invited.status, invited.json()) == (
        200,
        {"userId": "bob", "role": "member", "status": "invited"},
    )
    mine = (await client.request("GET", "/api/me/club-invitations", headers=bob)).json()
    assert [(i["clubId"], i["name"], i["ownerId"]) for i in mine["items"]] == [
        (cid, "Chess", "alice")
    ]
    assert set(mine["items"][0]) == {"clubId", "name", "ownerId", "invitedAt"}
    for who in (carol, alice):
        theirs = await client.request("GET", "/api/me/club-invitations", headers=who)
        assert theirs.json() == {"items": []}
    # Carol cannot accept Bob's invitation, decline it for him, nor see the club at all.
    assert (await client.request("POST", f"{base}/join", headers=carol)).status == 404
    assert (await client.request("DELETE", f"{base}/members/bob", headers=carol)).status == 404
    assert (await client.request("GET", f"{base}/members", headers=carol)).status == 404
    # Bob is not a member until he accepts: 404 on the club's members-only routes.
    assert (await client.request("GET", f"{base}/call", headers=bob)).status == 404
    assert (await client.request("POST", f"{base}/join", headers=bob)).status == 200
    await client.runtime.reactor.drain()
    # Dora is invited too; members do not see invitees, the owner does, after the members.
    await client.request("PUT", f"{base}/members/dora", headers=alice)
    seen = (await client.request("GET", f"{base}/members", headers=bob)).json()
    assert [(m["userId"], m["status"]) for m in seen["items"]] == [
        ("alice", "member"),
        ("bob", "member"),
    ]
    assert seen["continuation"] is None
    owner_view: list[tuple[str, str]] = []
    params: dict[str, str] = {}
    while True:
        page = await client.request("GET", f"{base}/members", headers=alice, params=params)
        assert page.status == 200
        owner_view += [(m["userId"], m["status"]) for m in page.json()["items"]]
        if page.json()["continuation"] is None:
            break
        params = {"continuation": page.json()["continuation"]}
    assert owner_view == [("alice", "member"), ("bob", "member"), ("dora", "invited")]
    # Dora declines.
    assert (await client.request("DELETE", f"{base}/members/dora", headers=dora)).status == 204
    assert (await client.request("GET", "/api/me/club-invitations", headers=dora)).json() == {
        "items": []
    }
    # An unknown user and one who blocked Alice: the same status and body.
    assert (await client.request("PUT", "/api/blocks/alice", headers=carol)).status == 204
    unknown = await client.request("PUT", f"{base}/members/nobody", headers=alice)
    blocked = await client.request("PUT", f"{base}/members/carol", headers=alice)
    assert unknown.status == blocked.status == 404
    assert unknown.json() == blocked.json()


async def test_acs_ids_in_the_members_list_are_for_the_caller_and_friends_only(
    client: Client,
) -> None:
    alice, bob, carol = await _users(client, "alice", "bob", "carol")
    cid = await _club(client, alice, "open")
    for who, name in ((bob, "bob"), (carol, "carol")):
        await _member(client, cid, alice, who, name)
    assert (await client.request("PUT", "/api/friends/bob", headers=alice)).status == 200
    assert (await client.request("PUT", "/api/friends/alice", headers=bob)).status == 200

    async def shown(who: dict[str, str]) -> dict[str, bool]:
        page = await client.request("GET", f"/api/clubs/{cid}/members", headers=who)
        return {m["userId"]: m["communicationUserId"] is not None for m in page.json()["items"]}

    assert await shown(alice) == {"alice": True, "bob": True, "carol": False}
    assert await shown(bob) == {"alice": True, "bob": True, "carol": False}
    assert await shown(carol) == {"alice": False, "bob": False, "carol": True}


@pytest.mark.parametrize("size_name", ["pageSize", "limit"])
async def test_members_are_paged(client: Client, size_name: str) -> None:
    """`pageSize` as on every paged route; `limit`, this route's old name, still works."""
    alice, bob, carol = await _users(client, "alice", "bob", "carol")
    cid = await _club(client, alice, "open")
    await _member(client, cid, alice, bob, "bob")
    await _member(client, cid, alice, carol, "carol")
    seen: list[str] = []
    continuation: str | None = None
    while True:
        params = {size_name: "2", **({"continuation": continuation} if continuation else {})}
        page = await client.request(
            "GET", f"/api/clubs/{cid}/members", headers=carol, params=params
        )
        assert page.status == 200
        assert len(page.json()["items"]) <= 2
        seen += [m["userId"] for m in page.json()["items"]]
        continuation = page.json()["continuation"]
        if continuation is None:
            break
    assert seen == ["alice", "bob", "carol"]


async def test_members_page_size_and_its_old_name_must_agree(client: Client) -> None:
    (alice,) = await _users(client, "alice")
    cid = await _club(client, alice, "open")
    path = f"/api/clubs/{cid}/members"
    same = await client.request("GET", path, headers=alice, params={"pageSize": "2", "limit": "2"})
    assert same.status == 200
    for params in ({"pageSize": "2", "limit": "3"}, {"limit": "0"}, {"pageSize": "101"}):
        bad = await client.request("GET", path, headers=alice, params=params)
        assert bad.status == 400, params
        assert bad.json()["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/clubs", {"name": "", "visibility": "open"}, "name"),
        ("POST", "/api/clubs", {"name": "x" * 101, "visibility": "open"}, "name"),
        ("POST", "/api/clubs", {"name": "a\nb", "visibility": "open"}, "name"),
        ("POST", "/api/clubs", {"name": "Chess", "visibility": "secret"}, "visibility"),
        ("POST", "/api/clubs", {"name": "Chess"}, "visibility"),
        ("PUT", "/api/clubs/{cid}/call", {"groupCallId": "not-a-uuid"}, "groupCallId"),
        ("PUT", "/api/clubs/{cid}/call", {"groupCallId": CALL_A + "x"}, "groupCallId"),
        ("PUT", "/api/clubs/{cid}/call", {"groupCallId": 1}, "groupCallId"),
        ("PUT", "/api/clubs/{cid}/call", {}, "groupCallId"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    client: Client, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    (alice,) = await _users(client, "alice")
    cid = await _club(client, alice, "open")
    resp = await client.request(method, path.format(cid=cid), headers=alice, json_body=body)
    assert resp.status == 400
    assert resp.json()["field"] == field
    clubs = (await client.request("GET", "/api/clubs", headers=alice)).json()["items"]
    assert [(c["clubId"], c["activeCall"]) for c in clubs] == [(cid, None)]


async def test_bad_club_id_in_the_path(client: Client) -> None:
    (alice,) = await _users(client, "alice")
    resp = await client.request("GET", "/api/clubs/%20x", headers=alice)
    assert resp.status in (400, 404)


async def test_group_call_id_is_case_insensitive(client: Client) -> None:
    (alice,) = await _users(client, "alice")
    cid = await _club(client, alice, "open")
    put = await client.request(
        "PUT", f"/api/clubs/{cid}/call", headers=alice, json_body={"groupCallId": CALL_A.upper()}
    )
    assert put.json()["groupCallId"] == CALL_A
    # The same call again (a retried PUT) is not a conflict.
    again = await client.request(
        "PUT", f"/api/clubs/{cid}/call", headers=alice, json_body={"groupCallId": CALL_A}
    )
    assert again.status == 201


async def test_costs_at_the_store_port(counting_client: Client) -> None:
    client = counting_client
    store = spy_of(client.runtime.adapters.store)
    alice, bob = await _users(client, "alice", "bob")
    clubs = [await _club(client, alice, "open") for _ in range(3)]
    for cid in clubs:
        await _member(client, cid, alice, bob, "bob")

    store.calls.clear()
    put = await client.request(
        "PUT", f"/api/clubs/{clubs[0]}/call", headers=bob, json_body={"groupCallId": CALL_A}
    )
    assert put.status == 201
    # The batched read, the conditional write, and the `call` work recorded before and marked
    # due after (the index and the pushes follow in the reconciler, not in this count).
    assert store.calls == {"read_many": 1, "create": 1, "upsert": 2}, store.calls
    await client.runtime.reactor.drain()

    store.calls.clear()
    clash = await client.request(
        "PUT", f"/api/clubs/{clubs[0]}/call", headers=alice, json_body={"groupCallId": CALL_B}
    )
    assert clash.status == 409
    assert sum(store.calls.values()) <= 3, store.calls

    store.calls.clear()
    assert (await client.request("GET", f"/api/clubs/{clubs[0]}/call", headers=bob)).status == 200
    assert sum(store.calls.values()) <= 2, store.calls

    store.calls.clear()
    listed = (await client.request("GET", "/api/clubs", headers=bob)).json()["items"]
    assert len(listed) == 3
    assert store.calls == {"query": 1, "read_many": 1}
