"""Erase is final across instances (issue 19 §5): two devservers share one Cosmos DB (the
Cosmos-protocol test server), as Functions instances scaled out do, each with its reaction
worker. Victims erase themselves on one while other users accept, invite, schedule and open
chats with them on the other, all at once; then the work is drained and the integrity check
finds no profile, no ACS identity and nothing else naming a victim."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.adapters.chat_local import LocalChatProvider
from switchboard.adapters.cosmos_store import CosmosStore, create_database_and_containers
from switchboard.ports import IdentityNotFound
from switchboard.runtime import set_runtime
from tests.conftest import make_runtime
from tests.contract.conftest import TEST_CLIENT_OPTIONS, CosmosServer, cosmos_server
from tests.e2e.conftest import DevServerProcess
from tests.integrity import check_all
from tests.integrity.erasure import check_erased

pytestmark = pytest.mark.cosmos
__all__ = ["cosmos_server"]  # the session fixture, shared with the contract tests

VICTIMS = 6
START, END = "2026-11-23T10:00:00+00:00", "2026-11-23T11:00:00+00:00"

# The devserver with its store on the test server (self-signed certificate, no SDK retries).
LAUNCHER = """
import sys, uvicorn
from dataclasses import replace
from function_app import app  # first: composing the app installs dev mode's issuer
from switchboard.adapters.cosmos_store import CosmosStore
from switchboard.dev.devserver import create_app
from switchboard.runtime import Runtime, set_runtime
from switchboard.settings import load_settings
from tests.contract.conftest import TEST_CLIENT_OPTIONS
endpoint, database, key, _, port = sys.argv[1:]
runtime = Runtime.from_settings(load_settings())
store = CosmosStore(endpoint, database, key, **TEST_CLIENT_OPTIONS)
set_runtime(Runtime(runtime.settings, replace(runtime.adapters, store=store)))
uvicorn.run(create_app(app), host="127.0.0.1", port=int(port), log_level="warning")
"""


@pytest.fixture
def database(cosmos_server: CosmosServer) -> str:
    name = f"races-{uuid.uuid4().hex[:10]}"
    asyncio.run(
        create_database_and_containers(
            cosmos_server.endpoint, name, cosmos_server.key, **TEST_CLIENT_OPTIONS
        )
    )
    return name


@pytest.fixture
def servers(
    tmp_path: Path, cosmos_server: CosmosServer, database: str
) -> Iterator[list[DevServerProcess]]:
    argv = [sys.executable, "-c", LAUNCHER, cosmos_server.endpoint, database, cosmos_server.key]
    data = tmp_path / "data"  # shared: the dev sign-in key, the local ACS issuer and chat
    started = [DevServerProcess(data, argv=argv) for _ in range(2)]
    for server in started:
        server.start()
    yield started
    for server in started:
        server.stop()


async def _json(
    http: httpx.AsyncClient, method: str, path: str, token: Any, body: Any = None
) -> Any:
    resp = await http.request(method, path, headers=token, json=body)
    assert resp.status_code < 300, (method, path, resp.status_code, resp.text)
    return resp.json()


async def _race(servers: list[DevServerProcess]) -> tuple[list[str], list[str]]:
    one, two = servers
    victims = [f"victim-{n}" for n in range(VICTIMS)]
    tokens = {u: one.login(u, u) for u in victims + [f"other-{n}" for n in range(VICTIMS)]}
    acs_ids: list[str] = []
    clubs: dict[str, str] = {}
    async with (
        httpx.AsyncClient(base_url=one.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=two.base_url, timeout=30) as b,
    ):
        for n, victim in enumerate(victims):
            other = f"other-{n}"
            await _json(a, "GET", "/api/me", tokens[other])
            token = await _json(a, "POST", "/api/token", tokens[victim])
            acs_ids.append(token["user"]["communicationUserId"])
            await _json(a, "PUT", f"/api/friends/{other}", tokens[victim])
            club = await _json(
                b, "POST", "/api/clubs", tokens[other], {"name": "Go", "visibility": "invite"}
            )
            clubs[victim] = club["clubId"]

        async def attack(n: int, victim: str) -> None:
            other = tokens[f"other-{n}"]
            await asyncio.gather(
                a.delete("/api/me", headers=tokens[victim]),
                b.put(f"/api/friends/{victim}", headers=other),
                b.put(f"/api/clubs/{clubs[victim]}/members/{victim}", headers=other),
                b.post(
                    "/api/meetings",
                    headers=other,
                    json={"subject": "Sync", "start": START, "end": END, "invitees": [victim]},
                ),
                a.put(f"/api/friends/{victim}/thread", headers=other),
            )

        await asyncio.gather(*(attack(n, v) for n, v in enumerate(victims)))
    return victims, acs_ids


async def test_erase_races_on_two_instances_sharing_cosmos(
    servers: list[DevServerProcess], cosmos_server: CosmosServer, database: str
) -> None:
    victims, acs_ids = await _race(servers)
    for server in servers:
        server.stop()  # their workers stop; what they left is drained here
    data = servers[0].data_dir
    store = CosmosStore(cosmos_server.endpoint, database, cosmos_server.key, **TEST_CLIENT_OPTIONS)
    runtime = make_runtime(data, store=store)
    set_runtime(runtime)
    try:
        await runtime.reactor.drain()
        chat = runtime.chat_provider
        assert isinstance(chat, LocalChatProvider)
        for victim in victims:
            assert await store.read("users", victim, victim) is None, victim
        assert await check_all(store, chat, erased=victims) == []
        assert await check_erased(store, chat, victims, also=acs_ids) == []
        for acs_id in acs_ids:  # their ACS identities are gone: no token can be issued
            with pytest.raises(IdentityNotFound):
                await runtime.adapters.identity_provider.issue_token(
                    acs_id, ["chat"], timedelta(hours=1)
                )
    finally:
        set_runtime(None)
        await runtime.close()
