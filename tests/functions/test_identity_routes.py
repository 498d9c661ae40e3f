"""Identity routes through their registered handlers (func.HttpRequest in, HttpResponse out):
auth on every route, a second user who sees nothing of the first, bad input, dependency failure."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import azure.functions as func
import pytest

from switchboard.adapters.acs_local import LocalIdentityIssuer, TokenIdentityDeleted, TokenRevoked
from switchboard.errors import DependencyUnavailable
from switchboard.runtime import set_runtime
from tests.conftest import Client, make_runtime
from tests.fakes import TEAMS_APP, TEAMS_OID, FakeIdentityProvider, entra_token, store_down
from tests.proxies import spy_of

PROTECTED = [
    ("POST", "/api/token"),
    ("POST", "/api/token/revoke"),
    ("POST", "/api/token/teams"),
    ("GET", "/api/me"),
    ("PATCH", "/api/me"),
    ("DELETE", "/api/me"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic YWxpY2U6cGFzcw==", "Bearer a.b.c"],
)
async def test_every_identity_route_needs_a_valid_token(
    counting_client: Client, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    resp = await counting_client.request(
        method, path, headers=headers, json_body={"displayName": "x"}
    )
    assert resp.status == 401
    assert resp.headers["content-type"] == "application/problem+json"
    challenge = resp.headers["www-authenticate"]
    assert challenge.startswith("Bearer realm=")
    # RFC 6750: an error code only when credentials were sent and refused.
    assert ('error="invalid_token"' in challenge) == bool(
        authorization and authorization.lower().startswith("bearer ") and authorization[7:].strip()
    )
    assert resp.json()["code"] == "unauthenticated"
    # Nothing else ran: not one store or ACS operation.
    assert spy_of(counting_client.runtime.adapters.store).calls == {}
    assert spy_of(counting_client.runtime.adapters.identity_provider).calls == {}


async def test_token_me_walkthrough(client: Client) -> None:
    alice = client.login("alice", "Alice")
    first = await client.request("POST", "/api/token", headers=alice)
    assert first.status == 200
    body = first.json()
    assert set(body) == {"token", "expiresOn", "user", "scopes"}
    acs_id = body["user"]["communicationUserId"]
    assert acs_id.startswith("8:acs:")
    assert body["scopes"] == ["chat", "voip"]
    assert first.headers["cache-control"] == "no-store"

    second = await client.request(
        "POST", "/api/token", headers=alice, json_body={"scopes": ["chat"], "expiresInMinutes": 90}
    )
    assert second.status == 200
    assert second.json()["user"]["communicationUserId"] == acs_id
    assert second.json()["token"] != body["token"]
    assert second.json()["scopes"] == ["chat"]

    me = await client.request("GET", "/api/me", headers=alice)
    assert me.status == 200
    assert me.json() == {
        "userId": "alice",
        "displayName": "Alice",
        "communicationUserId": acs_id,
        "phoneNumber": None,
        "phoneVerified": False,
    }


async def test_second_user_sees_and_changes_nothing_of_the_first(client: Client) -> None:
    alice, bob = client.login("alice", "Alice"), client.login("bob", "Bob")
    acs = client.runtime.adapters.identity_provider
    assert isinstance(acs, LocalIdentityIssuer)
    a_token = (await client.request("POST", "/api/token", headers=alice)).json()
    b_token = (await client.request("POST", "/api/token", headers=bob)).json()
    assert a_token["user"] != b_token["user"]

    # Bob's profile is Bob's; his writes, revokes and erase touch only him.
    assert (await client.request("GET", "/api/me", headers=bob)).json()["userId"] == "bob"
    await client.request("PATCH", "/api/me", headers=bob, json_body={"displayName": "Robert"})
    assert (await client.request("POST", "/api/token/revoke", headers=bob)).status == 204
    with pytest.raises(TokenRevoked):
        acs.verify_token(b_token["token"])
    acs.verify_token(a_token["token"])  # Alice's token still works
    assert (await client.request("DELETE", "/api/me", headers=bob)).status == 204
    acs.verify_token(a_token["token"])
    me = (await client.request("GET", "/api/me", headers=alice)).json()
    assert me["displayName"] == "Alice"
    assert me["communicationUserId"] == a_token["user"]["communicationUserId"]


async def test_user_ids_in_the_body_are_not_the_caller(client: Client) -> None:
    bob = client.login("bob", "Bob")
    resp = await client.request(
        "PATCH", "/api/me", headers=bob, json_body={"displayName": "x", "userId": "alice"}
    )
    assert resp.status == 400
    assert resp.json()["field"] == "userId"
    me = await client.request("GET", "/api/me", headers=bob)
    assert me.json()["userId"] == "bob"


async def test_revoke_kills_earlier_tokens(client: Client) -> None:
    alice = client.login("alice")
    acs = client.runtime.adapters.identity_provider
    assert isinstance(acs, LocalIdentityIssuer)
    before = (await client.request("POST", "/api/token", headers=alice)).json()["token"]
    assert (await client.request("POST", "/api/token/revoke", headers=alice)).status == 204
    with pytest.raises(TokenRevoked):
        acs.verify_token(before)
    after = (await client.request("POST", "/api/token", headers=alice)).json()["token"]
    acs.verify_token(after)


async def test_erase_then_token_gives_a_new_identity(client: Client) -> None:
    alice = client.login("alice", "Alice")
    acs = client.runtime.adapters.identity_provider
    assert isinstance(acs, LocalIdentityIssuer)
    old = (await client.request("POST", "/api/token", headers=alice)).json()
    await client.request("PATCH", "/api/me", headers=alice, json_body={"displayName": "Al"})
    assert (await client.request("DELETE", "/api/me", headers=alice)).status == 204
    with pytest.raises(TokenIdentityDeleted):
        acs.verify_token(old["token"])
    assert await client.runtime.adapters.store.read("users", "alice", "alice") is None
    await client.runtime.reactor.drain()
    me = (await client.request("GET", "/api/me", headers=alice)).json()
    assert me["communicationUserId"] is None
    assert me["displayName"] == "Alice"  # back to the token's name: the old profile is gone
    new = (await client.request("POST", "/api/token", headers=alice)).json()
    assert new["user"]["communicationUserId"] != old["user"]["communicationUserId"]


async def test_patch_me_sets_display_name(client: Client) -> None:
    alice = client.login("alice", "Alice")
    resp = await client.request(
        "PATCH", "/api/me", headers=alice, json_body={"displayName": "  Alice Liddell "}
    )
    assert resp.status == 200
    assert resp.json()["displayName"] == "Alice Liddell"


BIG = b'{"scopes": ["chat"], "pad": "' + b"x" * (64 * 1024) + b'"}'


J = "application/json"


# fmt: off
BAD_INPUT = [
    ("POST", "/api/token", b"{oops", J, 400, "invalid_json", None),
    ("POST", "/api/token", b'{"scopes": ["chat"]}', "text/plain", 415,
     "unsupported_media_type", None),
    ("POST", "/api/token", BIG, J, 413, "payload_too_large", None),
    ("POST", "/api/token", b'{"scopes": "chat"}', J, 400, "invalid_input", "scopes"),
    ("POST", "/api/token", b'{"expiresInMinutes": "60"}', J, 400, "invalid_input",
     "expiresInMinutes"),
    ("POST", "/api/token", b'{"expiresInMinutes": 59}', J, 400, "invalid_input",
     "expiresInMinutes"),
    ("POST", "/api/token", b'{"expiresInMinutes": 1441}', J, 400, "invalid_input",
     "expiresInMinutes"),
    ("POST", "/api/token", b'{"scopes": ["bogus"]}', J, 400, "invalid_scope", "scopes"),
    ("POST", "/api/token", b'{"scopes": ["chat.join"]}', J, 403, "scope_not_allowed",
     "scopes"),
    ("POST", "/api/token", b'{"scopes": []}', J, 400, "invalid_input", "scopes"),
    ("POST", "/api/token", b'{"scope": ["chat"]}', J, 400, "invalid_input", "scope"),
    ("POST", "/api/token", b"[1, 2]", J, 400, "invalid_input", None),
    ("PATCH", "/api/me", b"", J, 400, "invalid_input", None),
    ("PATCH", "/api/me", b'{"displayName": ""}', J, 400, "invalid_input", "displayName"),
    ("PATCH", "/api/me", b'{"displayName": "a\\u0000b"}', J, 400, "invalid_input",
     "displayName"),
    ("PATCH", "/api/me", b'{"displayName": 7}', J, 400, "invalid_input", "displayName"),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status", "code", "field"), BAD_INPUT
)
async def test_bad_input_gets_a_problem_and_changes_nothing(
    client: Client,
    method: str,
    path: str,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
    field: str | None,
) -> None:
    alice = client.login("alice", "Alice")
    resp = await client.request(
        method, path, body=body, headers={**alice, "Content-Type": content_type}
    )
    assert resp.status == status
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert {"type", "title", "status", "detail", "code"} <= set(problem)
    assert problem.get("field") == field
    assert await client.runtime.adapters.store.read("users", "alice", "alice") is None


async def test_acs_down_is_503_with_retry_after_and_no_state(fake_acs_client: Client) -> None:
    acs = fake_acs_client.runtime.adapters.identity_provider
    assert isinstance(acs, FakeIdentityProvider)
    acs.fail["create_user_and_token"] = DependencyUnavailable("acs", retry_after=9)
    alice = fake_acs_client.login("alice")
    resp = await fake_acs_client.request("POST", "/api/token", headers=alice)
    assert resp.status == 503
    assert resp.headers["retry-after"] == "9"
    assert resp.json()["code"] == "dependency_unavailable"
    assert acs.identities == {}
    assert await fake_acs_client.runtime.adapters.store.read("users", "alice", "alice") is None


async def test_store_down_after_acs_create_is_503_and_identity_undone(
    fake_acs_client: Client,
) -> None:
    store = spy_of(fake_acs_client.runtime.adapters.store)
    acs = fake_acs_client.runtime.adapters.identity_provider
    assert isinstance(acs, FakeIdentityProvider)
    store.fail["create:users"] = store_down()
    resp = await fake_acs_client.request(
        "POST", "/api/token", headers=fake_acs_client.login("alice")
    )
    assert resp.status == 503
    assert "retry-after" in resp.headers
    assert acs.identities == {}


async def test_health_reports_store_down(fake_acs_client: Client) -> None:
    ok = await fake_acs_client.request("GET", "/api/health")
    assert ok.status == 200
    assert ok.json()["status"] == "ok"
    store = spy_of(fake_acs_client.runtime.adapters.store)
    store.fail["ping"] = store_down()
    down = await fake_acs_client.request("GET", "/api/health")
    assert down.status == 503
    assert down.json()["status"] == "unavailable"
    assert down.headers["retry-after"] == "3"


async def test_unexpected_error_is_a_generic_500_logged_with_traceback(
    fake_acs_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    acs = fake_acs_client.runtime.adapters.identity_provider
    assert isinstance(acs, FakeIdentityProvider)
    acs.fail["create_user_and_token"] = RuntimeError("boom: secret-detail")
    with caplog.at_level(logging.ERROR):
        resp = await fake_acs_client.request(
            "POST", "/api/token", headers=fake_acs_client.login("alice")
        )
    assert resp.status == 500
    assert resp.json()["code"] == "internal_error"
    assert "secret-detail" not in resp.body.decode()
    assert any(r.exc_info for r in caplog.records)


async def test_no_token_or_key_in_any_log_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    alice = client.login("alice", "Alice")
    app_token = alice["Authorization"].split()[1]
    with caplog.at_level(logging.DEBUG):
        issued = (await client.request("POST", "/api/token", headers=alice)).json()["token"]
        await client.request("POST", "/api/token", headers={"Authorization": "Bearer x.y.z"})
        await client.request("POST", "/api/token/revoke", headers=alice)
        await client.request("DELETE", "/api/me", headers=alice)
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert app_token not in text
    assert issued not in text
    assert "PRIVATE KEY" not in text


async def test_bad_setting_at_first_request_is_a_logged_500_naming_it(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchboard.runtime import set_runtime
    from switchboard.settings import load_settings
    from tests.conftest import app_server

    set_runtime(None)
    load_settings.cache_clear()
    monkeypatch.setenv("TOKEN_TTL_MINUTES", "5")
    handler = next(fn.handler for fn in app_server().http if fn.name == "get_me")
    try:
        with caplog.at_level(logging.CRITICAL):
            resp = await handler(
                func.HttpRequest(method="GET", url="http://localhost/api/me", body=b"")
            )
    finally:
        load_settings.cache_clear()
    assert resp.status_code == 500
    assert json.loads(resp.get_body())["code"] == "misconfigured"
    assert "TOKEN_TTL_MINUTES" not in resp.get_body().decode()
    assert any("TOKEN_TTL_MINUTES" in r.getMessage() for r in caplog.records)


@pytest.fixture
async def teams_client(tmp_path: Path) -> AsyncIterator[Client]:
    rt = make_runtime(tmp_path, TEAMS_CLIENT_ID=TEAMS_APP)
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


async def test_teams_exchange_over_the_route(teams_client: Client) -> None:
    alice = teams_client.login("alice")
    resp = await teams_client.request(
        "POST", "/api/token/teams", headers=alice, json_body={"aadToken": entra_token()}
    )
    assert resp.status == 200
    body = resp.json()
    assert body["user"] == {"microsoftTeamsUserId": TEAMS_OID}
    assert set(body) == {"token", "expiresOn", "user"}
    acs = teams_client.runtime.adapters.identity_provider
    assert isinstance(acs, LocalIdentityIssuer)
    assert acs.verify_token(body["token"])["sub"] == f"8:orgid:{TEAMS_OID}"
    # Stateless: nothing was written for the caller (or anyone).
    assert await teams_client.runtime.adapters.store.read("users", "alice", "alice") is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"aadToken": "not-a-jwt"}, 400, "invalid_teams_token"),
        ({"aadToken": entra_token(appid="someone-else")}, 400, "invalid_teams_token"),
        ({"aadToken": entra_token(exp=1)}, 400, "invalid_teams_token"),
        ({"aadToken": ""}, 400, "invalid_input"),
        ({"aadToken": 7}, 400, "invalid_input"),
        ({}, 400, "invalid_input"),
    ],
)
async def test_teams_exchange_bad_tokens(
    teams_client: Client, body: dict[str, object], status: int, code: str
) -> None:
    resp = await teams_client.request(
        "POST", "/api/token/teams", headers=teams_client.login("bob"), json_body=body
    )
    assert resp.status == status
    assert resp.json()["code"] == code


async def test_teams_exchange_not_configured_is_404(client: Client) -> None:
    resp = await client.request(
        "POST",
        "/api/token/teams",
        headers=client.login("alice"),
        json_body={"aadToken": entra_token()},
    )
    assert resp.status == 404
    assert resp.json()["code"] == "teams_not_configured"


# --- dev login and authentication share one id rule (issue 7, item 2) -------------------------


@pytest.mark.parametrize("user_id", ["a\u0001b", "carol\n", ".", "..", " alice", "a\x85b"])
async def test_dev_login_refuses_ids_authentication_would_refuse(
    client: Client, user_id: str
) -> None:
    resp = await client.request("POST", "/api/dev/login", json_body={"userId": user_id})
    assert resp.status == 400
    problem = resp.json()
    assert problem["code"] == "invalid_input"
    assert problem["field"] == "userId"


async def test_a_dev_login_token_is_accepted_by_authentication(client: Client) -> None:
    resp = await client.request("POST", "/api/dev/login", json_body={"userId": "a b.c@d"})
    assert resp.status == 200
    token = resp.json()["accessToken"]
    me = await client.request("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status in (200, 404)  # authenticated: not a 401


async def test_erase_is_constant_in_store_operations_whatever_the_user_owns(
    counting_client: Client,
) -> None:
    """Issue 19: DELETE /api/me records the erasure and answers; the purge of friendships,
    clubs, devices, numbers and threads follows in the background, however many there are."""
    client = counting_client
    store = spy_of(client.runtime.adapters.store)
    costs = []
    for user, friends in (("lonely", 0), ("popular", 12)):
        me = client.login(user)
        await client.request("POST", "/api/token", headers=me)
        for n in range(friends):
            friend = client.login(f"{user}-friend-{n}")
            assert (
                await client.request("PUT", f"/api/friends/{user}", headers=friend)
            ).status == 200
            assert (
                await client.request("PUT", f"/api/friends/{user}-friend-{n}", headers=me)
            ).status == 200
        if friends:
            club = await client.request(
                "POST", "/api/clubs", headers=me, json_body={"name": "Chess", "visibility": "open"}
            )
            assert club.status == 201
        await client.runtime.reactor.drain()
        store.calls.clear()
        assert (await client.request("DELETE", "/api/me", headers=me)).status == 204
        costs.append(dict(store.calls))
    assert costs[0] == costs[1] == {"read_many": 1, "upsert": 3, "delete": 2}


# --- the token budget over the routes (issue 21 B1) -----------------------------------------


@pytest.fixture
async def budget_client(tmp_path: Path) -> AsyncIterator[Client]:
    rt = make_runtime(tmp_path, TOKEN_BUDGET="3/10m", TEAMS_CLIENT_ID=TEAMS_APP)
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


async def test_over_budget_is_429_with_retry_after_while_another_user_gets_200(
    budget_client: Client,
) -> None:
    import asyncio

    alice, bob, carol = (budget_client.login(u) for u in ("alice", "bob", "carol"))
    for _ in range(3):
        assert (await budget_client.request("POST", "/api/token", headers=alice)).status == 200
    # At the same moment: alice over her budget, bob and carol within theirs.
    over, bobs, carols = await asyncio.gather(
        budget_client.request("POST", "/api/token", headers=alice),
        budget_client.request("POST", "/api/token", headers=bob),
        budget_client.request(
            "POST", "/api/token/teams", headers=carol, json_body={"aadToken": entra_token()}
        ),
    )
    assert over.status == 429
    assert over.headers["content-type"] == "application/problem+json"
    assert over.json()["code"] == "token_rate_limited"
    assert int(over.headers["retry-after"]) == 200  # one issue per 10 min / 3
    assert (bobs.status, carols.status) == (200, 200)
    # The Teams exchange is charged to the same budget.
    teams = await budget_client.request(
        "POST", "/api/token/teams", headers=alice, json_body={"aadToken": entra_token()}
    )
    assert teams.status == 429
    # Revoke neither resets it nor is refused by it.
    assert (await budget_client.request("POST", "/api/token/revoke", headers=alice)).status == 204
    assert (await budget_client.request("POST", "/api/token", headers=alice)).status == 429


async def test_one_audit_line_per_issue_without_the_token(
    budget_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.identity")
    resp = await budget_client.request(
        "POST", "/api/token", headers=budget_client.login("dave\u2028x")
    )
    assert resp.status == 200
    lines = [r.getMessage() for r in caplog.records if "token issued" in r.getMessage()]
    assert lines == ["token issued: user=dave\\u2028x kind=acs scopes=chat,voip minutes=60"]
    assert resp.json()["token"] not in caplog.text
