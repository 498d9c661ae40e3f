"""`kill -9` under mixed load (issue 19): a devserver is killed while users befriend, join,
rename and erase themselves; restarted on the same data dir, its work drained, the integrity
check finds every invariant holding and nothing naming a user whose erase was answered.

Work is recorded before each change, so a change the kill cut short leaves work that finds
nothing to do, and one it let through leaves work that follows it up; items the dead process
had claimed are run by the drain (which ignores claims) or, left alone, once their claim lapses.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx

from switchboard.adapters.chat_local import LocalChatProvider
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.runtime import set_runtime
from tests.conftest import make_runtime
from tests.e2e.conftest import DevServerProcess
from tests.integrity import check_all

USERS = 24
LOAD_SECONDS = 1.5


USERS_ = [f"user{n:02d}" for n in range(USERS)]  # none a substring of another


async def _setup(server: DevServerProcess) -> tuple[dict[str, dict[str, str]], str]:
    tokens = {u: server.login(u, u.upper()) for u in USERS_}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        for u in USERS_:
            await http.get("/api/me", headers=tokens[u])
        created = await http.post(
            "/api/clubs", headers=tokens["user00"], json={"name": "Load", "visibility": "open"}
        )
    return tokens, str(created.json()["clubId"])


async def _load(
    server: DevServerProcess,
    tokens: dict[str, dict[str, str]],
    club: str,
    erased: set[str],
    stop: asyncio.Event,
) -> None:
    users = USERS_
    rng = random.Random(7)
    # A user's own requests run one at a time (as one client does): a request of theirs still in
    # flight when their erase answers would be their sign-in again, not a request of another's.
    # Other users' requests naming them (befriending, threads) do race their erase.
    busy: set[str] = set()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:

        async def one() -> None:
            live = [u for u in users if u not in erased and u != "user00" and u not in busy]
            if len(live) < 2:
                await asyncio.sleep(0.05)  # nobody free: idle (never spin the loop)
                return
            user, other = rng.sample(live, 2)
            busy.add(user)
            try:
                await act(user, other)
            finally:
                busy.discard(user)

        async def act(user: str, other: str) -> None:
            choice = rng.random()
            if choice < 0.35:
                await http.put(f"/api/friends/{other}", headers=tokens[user])
            elif choice < 0.6:
                await http.post(f"/api/clubs/{club}/join", headers=tokens[user])
            elif choice < 0.75:
                await http.patch(
                    "/api/me", headers=tokens[user], json={"displayName": f"{user} renamed"}
                )
            elif choice < 0.85:
                await http.put(f"/api/friends/{other}/thread", headers=tokens[user])
            else:
                resp = await http.delete("/api/me", headers=tokens[user])
                if resp.status_code == 204:
                    erased.add(user)

        async def worker() -> None:
            while not stop.is_set():
                try:
                    await one()
                except httpx.HTTPError:
                    return  # the server was killed under us

        await asyncio.gather(*(worker() for _ in range(8)))


async def test_kill_9_under_mixed_load_then_restart_drain_and_check(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = DevServerProcess(data)
    server.start()
    tokens, club = await _setup(server)
    erased: set[str] = set()
    stop = asyncio.Event()
    load = asyncio.create_task(_load(server, tokens, club, erased, stop))
    await asyncio.sleep(LOAD_SECONDS)
    server.kill()  # mid-flight: requests and the worker die where they stand
    stop.set()
    await load
    assert erased, "the load erased nobody before the kill: the test shows nothing"

    server.start()  # the same data dir, as a recycled instance comes back
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        assert (await http.get("/api/health")).status_code == 200
    server.stop()

    # Drained here (claims of the killed process ignored), then checked from the files.
    runtime = make_runtime(data, store=SqliteStore(data / "switchboard.sqlite"))
    set_runtime(runtime)
    try:
        await runtime.reactor.drain()
        chat = runtime.chat_provider
        assert isinstance(chat, LocalChatProvider)
        assert await check_all(runtime.adapters.store, chat, erased=sorted(erased)) == []
        for user in erased:
            assert await runtime.adapters.store.read("users", user, user) is None, user
    finally:
        set_runtime(None)
        await runtime.close()
