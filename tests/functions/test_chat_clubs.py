"""Club threads through the clubs routes and the reaction layer: the thread follows members
(create, join, invitation accepted, leave, removal, delete, erase), only members see
`chatThreadId`, nobody is given an ACS identity by someone else's action (a member gets their
seat after their own first token), a chat failure never fails a club operation and the retried
reconciler repairs it, and a join costs the chat service one look and one add."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.adapters.chat_local import LOCAL_SERVICE_USER, LocalChatProvider
from switchboard.errors import DependencyUnavailable
from switchboard.runtime import Runtime, set_runtime
from tests.conftest import Client, make_runtime
from tests.integrity.clubs import check
from tests.proxies import PortSpy, spy, spy_of


class World:
    def __init__(self, client: Client, local: LocalChatProvider) -> None:
        self.client = client
        self.local = local

    @property
    def chat(self) -> PortSpy:
        return spy_of(self.client.runtime.chat_provider)

    async def first_token(self, user: str) -> None:
        resp = await self.client.request("POST", "/api/token", headers=self.client.login(user))
        assert resp.status == 200

    async def acs_id(self, user: str) -> str:
        me = await self.client.request("GET", "/api/me", headers=self.client.login(user))
        acs = me.json()["communicationUserId"]
        assert acs, user
        return str(acs)

    async def settle(self) -> None:
        await self.client.runtime.reactor.drain()
        assert await check(self.client.runtime.adapters.store, self.local) == []

    async def create(self, owner: str, visibility: str = "open") -> str:
        resp = await self.client.request(
            "POST",
            "/api/clubs",
            headers=self.client.login(owner),
            json_body={"name": "Chess", "visibility": visibility},
        )
        assert resp.status == 201, resp.body
        return str(resp.json()["clubId"])

    async def join(self, user: str, club: str) -> int:
        resp = await self.client.request(
            "POST", f"/api/clubs/{club}/join", headers=self.client.login(user)
        )
        return resp.status

    async def club(self, user: str, club: str) -> dict[str, object]:
        resp = await self.client.request(
            "GET", f"/api/clubs/{club}", headers=self.client.login(user)
        )
        assert resp.status == 200, resp.body
        body: dict[str, object] = resp.json()
        return body

    async def threads(self, user: str) -> list[dict[str, object]]:
        resp = await self.client.request("GET", "/api/threads", headers=self.client.login(user))
        items: list[dict[str, object]] = resp.json()["items"]
        return items


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    local = LocalChatProvider(tmp_path)
    base = make_runtime(tmp_path)
    rt = Runtime(base.settings, dataclasses.replace(base.adapters, chat_provider=spy(local)))
    set_runtime(rt)
    yield World(Client(rt), local)
    set_runtime(None)
    await rt.close()


async def test_the_club_thread_follows_members_and_only_members_see_it(world: World) -> None:
    for user in ("owner", "ann", "bea"):
        await world.first_token(user)
    club = await world.create("owner")
    assert await world.join("ann", club) == 200
    await world.settle()
    owner_view = await world.club("owner", club)
    thread_id = owner_view["chatThreadId"]
    assert isinstance(thread_id, str)
    assert (await world.club("ann", club))["chatThreadId"] == thread_id
    # An outsider may read an open club, never its thread.
    assert (await world.club("outsider", club))["chatThreadId"] is None
    assert await world.threads("outsider") == []
    assert [(t["clubId"], t["topic"]) for t in await world.threads("ann")] == [(club, "Chess")]
    assert world.local.participants(thread_id) == {
        LOCAL_SERVICE_USER,
        await world.acs_id("owner"),
        await world.acs_id("ann"),
    }

    left = await world.client.request(
        "DELETE", f"/api/clubs/{club}/members/ann", headers=world.client.login("ann")
    )
    assert left.status == 204
    await world.settle()
    assert await world.acs_id("ann") not in world.local.participants(thread_id)
    assert await world.threads("ann") == []

    invited = await world.client.request(
        "PUT", f"/api/clubs/{club}/members/bea", headers=world.client.login("owner")
    )
    assert invited.status == 200
    await world.settle()
    assert await world.acs_id("bea") not in world.local.participants(thread_id)  # not yet
    assert await world.join("bea", club) == 200  # accepts
    await world.settle()
    assert await world.acs_id("bea") in world.local.participants(thread_id)

    deleted = await world.client.request(
        "DELETE", f"/api/clubs/{club}", headers=world.client.login("owner")
    )
    assert deleted.status == 204
    await world.settle()
    assert not world.local.exists(thread_id)
    assert await world.threads("owner") == []
    assert await world.threads("bea") == []


async def test_no_acs_identity_is_made_by_someone_elses_action(world: World) -> None:
    """Ann joins (no token yet): she is a member without an ACS identity and without a seat;
    her own first token gives her one, and the seat follows."""
    await world.first_token("owner")
    club = await world.create("owner")
    assert await world.join("ann", club) == 200
    await world.settle()
    me = await world.client.request("GET", "/api/me", headers=world.client.login("ann"))
    assert me.json()["communicationUserId"] is None
    thread_id = (await world.club("owner", club))["chatThreadId"]
    assert isinstance(thread_id, str)
    assert world.local.participants(thread_id) == {LOCAL_SERVICE_USER, await world.acs_id("owner")}
    assert await world.threads("ann") == []

    await world.first_token("ann")
    await world.settle()
    assert await world.acs_id("ann") in world.local.participants(thread_id)
    assert [t["threadId"] for t in await world.threads("ann")] == [thread_id]


async def test_invite_clubs_hide_the_thread_from_outsiders(world: World) -> None:
    club = await world.create("owner", "invite")
    resp = await world.client.request(
        "GET", f"/api/clubs/{club}", headers=world.client.login("outsider")
    )
    assert resp.status == 404
    assert "chatThreadId" not in resp.body.decode()


async def test_a_join_costs_chat_nothing_in_the_request_and_one_add_after(world: World) -> None:
    await world.first_token("owner")
    club = await world.create("owner")
    await world.first_token("ann")  # ann exists with an ACS identity
    await world.settle()
    world.chat.calls.clear()

    assert await world.join("ann", club) == 200
    assert dict(world.chat.calls) == {}
    await world.settle()
    assert dict(world.chat.calls) == {"list_participants": 1, "add_participants": 1}


async def test_a_chat_failure_never_fails_a_join_and_the_retry_repairs_it(world: World) -> None:
    for user in ("owner", "ann"):
        await world.first_token(user)
    club = await world.create("owner")
    await world.settle()
    thread_id = (await world.club("owner", club))["chatThreadId"]
    assert isinstance(thread_id, str)
    world.chat.fail["add_participants"] = DependencyUnavailable("chat", retry_after=5)

    assert await world.join("ann", club) == 200  # the club join stands
    await world.client.runtime.reactor.drain()  # the chat reconciler fails, is parked

    assert await world.acs_id("ann") not in world.local.participants(thread_id)
    assert await world.threads("ann") == []
    members = await world.client.request(
        "GET", f"/api/clubs/{club}/members", headers=world.client.login("owner")
    )
    assert {m["userId"] for m in members.json()["items"]} == {"owner", "ann"}

    del world.chat.fail["add_participants"]
    await world.client.runtime.reactor.rearm_parked()
    await world.settle()
    assert await world.acs_id("ann") in world.local.participants(thread_id)
    assert [t["threadId"] for t in await world.threads("ann")] == [thread_id]


async def test_a_chat_outage_at_creation_is_repaired_by_the_retry(world: World) -> None:
    await world.first_token("owner")
    world.chat.fail["create_thread"] = DependencyUnavailable("chat")
    club = await world.create("owner")
    await world.client.runtime.reactor.drain()
    assert (await world.club("owner", club))["chatThreadId"] is None

    del world.chat.fail["create_thread"]
    await world.client.runtime.reactor.rearm_parked()
    await world.settle()
    thread_id = (await world.club("owner", club))["chatThreadId"]
    assert isinstance(thread_id, str)
    assert await world.acs_id("owner") in world.local.participants(thread_id)


async def test_erasing_a_member_takes_them_out_of_the_thread(world: World) -> None:
    for user in ("owner", "ann"):
        await world.first_token(user)
    club = await world.create("owner")
    assert await world.join("ann", club) == 200
    await world.settle()
    thread_id = (await world.club("owner", club))["chatThreadId"]
    assert isinstance(thread_id, str)
    ann_acs = await world.acs_id("ann")

    erased = await world.client.request("DELETE", "/api/me", headers=world.client.login("ann"))

    assert erased.status == 204
    await world.settle()
    assert ann_acs not in world.local.participants(thread_id)
    assert await world.acs_id("owner") in world.local.participants(thread_id)


async def test_the_owner_leaving_an_empty_club_deletes_its_thread(world: World) -> None:
    await world.first_token("owner")
    club = await world.create("owner")
    await world.settle()
    thread_id = (await world.club("owner", club))["chatThreadId"]
    assert isinstance(thread_id, str)
    left = await world.client.request(
        "DELETE", f"/api/clubs/{club}/members/owner", headers=world.client.login("owner")
    )
    assert left.status == 204
    await world.settle()
    assert not world.local.exists(thread_id)
