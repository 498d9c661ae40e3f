"""Clubs under races across two processes: two devservers share one Cosmos-protocol database
(as Functions instances share Cosmos DB) and one data dir, each running its reaction worker.
Over HTTP, users join, leave, accept invitations and erase themselves on both at once while the
owner invites on the other; then, without any test draining, the copies converge and the clubs'
integrity check finds nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.conftest import TEST_CLIENT_OPTIONS, CosmosServer, cosmos_server
from tests.e2e.conftest import ROOT, free_port
from tests.integrity.clubs import check

__all__ = ["cosmos_server"]  # the session fixture, shared with tests/contract

DEVSERVER = """
import sys, uvicorn
from dataclasses import replace
import function_app  # composes the app, with its dev code in dev mode
from switchboard.adapters.cosmos_store import CosmosStore
from switchboard.dev.devserver import create_app
from switchboard.runtime import Runtime, set_runtime
from switchboard.settings import load_settings
from tests.contract.conftest import TEST_CLIENT_OPTIONS
endpoint, database, key, port = sys.argv[1:]
runtime = Runtime.from_settings(load_settings())
store = CosmosStore(endpoint, database, key, **TEST_CLIENT_OPTIONS)
set_runtime(Runtime(runtime.settings, replace(runtime.adapters, store=store)))
uvicorn.run(create_app(function_app.app), host="127.0.0.1", port=int(port), log_level="warning")
"""

pytestmark = [pytest.mark.e2e, pytest.mark.cosmos]


class Instances:
    def __init__(self, server: CosmosServer, database: str, data: Path) -> None:
        self.server, self.database, self.data = server, database, data
        self.urls: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        for n in range(count):
            port = free_port()
            log = (self.data.parent / f"instance-{n}.log").open("ab")
            self._procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        DEVSERVER,
                        self.server.endpoint,
                        self.database,
                        self.server.key,
                        str(port),
                    ],
                    cwd=ROOT,
                    env={**os.environ, "SWITCHBOARD_DATA_DIR": str(self.data)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            self.urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url in self.urls:
            while True:
                try:
                    if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("an instance did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def instances(cosmos_server: CosmosServer, tmp_path: Path) -> Iterator[Instances]:
    from switchboard.adapters.cosmos_store import create_database_and_containers

    database = f"e2e-{uuid.uuid4().hex[:10]}"
    asyncio.run(
        create_database_and_containers(
            cosmos_server.endpoint, database, cosmos_server.key, **TEST_CLIENT_OPTIONS
        )
    )
    running = Instances(cosmos_server, database, tmp_path / "data")
    running.data.mkdir(parents=True)
    running.start(2)
    yield running
    running.stop()


async def _scenario(urls: list[str]) -> str:
    a, b = (httpx.AsyncClient(base_url=url, timeout=30) for url in urls)

    async def login(http: httpx.AsyncClient, user: str) -> dict[str, str]:
        token = (await http.post("/api/dev/login", json={"userId": user})).json()["accessToken"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (await http.post("/api/token", headers=auth)).status_code == 200
        return auth

    owner = await login(a, "owner")
    people = {f"p{n}": await login(a if n % 2 else b, f"p{n}") for n in range(10)}
    club = (
        await a.post("/api/clubs", headers=owner, json={"name": "Chess", "visibility": "invite"})
    ).json()["clubId"]
    open_club = (
        await b.post("/api/clubs", headers=owner, json={"name": "Go", "visibility": "open"})
    ).json()["clubId"]
    for name in ("p0", "p1", "p2", "p3"):
        assert (await a.put(f"/api/clubs/{club}/members/{name}", headers=owner)).status_code == 200

    async def accept(n: int) -> None:
        await (b if n % 2 else a).post(f"/api/clubs/{club}/join", headers=people[f"p{n}"])

    async def erase(n: int) -> None:
        await (a if n % 2 else b).delete("/api/me", headers=people[f"p{n}"])

    async def invite(n: int) -> None:
        await b.put(f"/api/clubs/{club}/members/p{n}", headers=owner)

    async def churn(n: int) -> None:
        http, other = (a, b) if n % 2 else (b, a)
        who = people[f"p{n}"]
        await http.post(f"/api/clubs/{open_club}/join", headers=who)
        await other.delete(f"/api/clubs/{open_club}/members/p{n}", headers=who)
        if n % 3:
            await http.post(f"/api/clubs/{open_club}/join", headers=who)

    # p1 accepts first: the club must outlive its owner's leaving (with no member left, a leaving
    # owner deletes the club — the outcome would depend on which request lands first).
    await accept(1)
    await asyncio.gather(
        accept(0),
        erase(0),  # erase racing the acceptance
        accept(2),
        erase(2),
        invite(4),
        erase(4),  # erase racing an invitation
        invite(5),
        *(churn(n) for n in range(5, 10)),
        a.delete(f"/api/clubs/{club}/members/owner", headers=owner),  # the owner leaves
    )
    await a.aclose()
    await b.aclose()
    return str(club)


def test_races_across_two_instances_converge_without_help(instances: Instances) -> None:
    from switchboard.adapters.chat_local import LocalChatProvider
    from switchboard.adapters.cosmos_store import CosmosStore

    club = asyncio.run(_scenario(instances.urls))

    async def converged() -> list[str]:
        store = CosmosStore(
            instances.server.endpoint,
            instances.database,
            instances.server.key,
            **TEST_CLIENT_OPTIONS,
        )
        chat = LocalChatProvider(instances.data)
        try:
            deadline = time.monotonic() + 60
            while True:
                found = await check(store, chat)
                if not found or time.monotonic() > deadline:
                    return found
                await asyncio.sleep(0.5)
        finally:
            await store.close()
            await chat.close()

    assert asyncio.run(converged()) == []
    # The one member left of the invite club (p0 and p2 erased themselves, p3 never accepted,
    # the owner left) owns it, and it counts one member.
    base = instances.urls[1]
    token = httpx.post(f"{base}/api/dev/login", json={"userId": "p1"}).json()["accessToken"]
    seen = httpx.get(f"{base}/api/clubs/{club}", headers={"Authorization": f"Bearer {token}"})
    assert seen.status_code == 200, seen.text
    assert (seen.json()["ownerId"], seen.json()["memberCount"]) == ("p1", 1)
