"""The clubs figures of `make bench`: store operations per request on the call registry's hot
paths (counted at the store port with PortSpy), and the time of 50 members reading the club's
call at once over HTTP from the devserver, on SQLite and on the Cosmos-protocol test server
(`@vercel/cosmosdb-server`, started as tests/contract does). Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
READERS = 50
ROUNDS = 5
CLUBS_LISTED = 20
CALL = "5b2c9c3e-0f1a-4d7e-9a44-8e2b51c0d6a1"

# The devserver on a Cosmos-protocol server with a self-signed certificate: the same app, with
# the store built with the tests' client options (no certificate check, no SDK retries).
COSMOS_DEVSERVER = """
import sys, uvicorn
from dataclasses import replace
from function_app import app  # first: composing the app installs dev mode's issuer
from switchboard.adapters.cosmos_store import CosmosStore
from switchboard.dev.devserver import create_app
from switchboard.runtime import Runtime, set_runtime
from switchboard.settings import load_settings
from tests.contract.conftest import TEST_CLIENT_OPTIONS
endpoint, database, key, port = sys.argv[1:]
runtime = Runtime.from_settings(load_settings())
store = CosmosStore(endpoint, database, key, **TEST_CLIENT_OPTIONS)
set_runtime(Runtime(runtime.settings, replace(runtime.adapters, store=store)))
asgi = create_app(app)
uvicorn.run(asgi, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)
"""


async def operation_counts() -> dict[str, dict[str, int]]:
    """Store operations of the clubs hot paths, through the registered handlers."""
    from switchboard.adapters.sqlite_store import SqliteStore
    from switchboard.runtime import set_runtime
    from tests.conftest import Client, make_runtime
    from tests.proxies import spy, spy_of

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        rt = make_runtime(data, store=spy(SqliteStore(data / "counts.sqlite")))
        set_runtime(rt)
        client = Client(rt)
        store = spy_of(rt.adapters.store)
        alice, bob = client.login("alice", "Alice"), client.login("bob", "Bob")
        clubs = []
        for n in range(CLUBS_LISTED):
            created = await client.request(
                "POST",
                "/api/clubs",
                headers=alice,
                json_body={"name": f"c{n}", "visibility": "open"},
            )
            clubs.append(created.json()["clubId"])
            await client.request("POST", f"/api/clubs/{clubs[-1]}/join", headers=bob)
        carol = client.login("carol")
        # Each user's first request also registers their profile (one read per process): done
        # here, so the counts below are the routes' own.
        await client.request("GET", "/api/clubs", headers=carol)
        call = f"/api/clubs/{clubs[0]}/call"
        steps: list[tuple[str, str, str, dict[str, str], Any]] = [
            ("PUT call (registers)", "PUT", call, alice, {"groupCallId": CALL}),
            ("PUT call (409, call active)", "PUT", call, bob, {"groupCallId": str(uuid.uuid4())}),
            ("GET call (member)", "GET", call, bob, None),
            (f"GET /api/clubs ({CLUBS_LISTED} clubs)", "GET", "/api/clubs", bob, None),
            ("GET club", "GET", f"/api/clubs/{clubs[0]}", bob, None),
            ("POST join", "POST", f"/api/clubs/{clubs[1]}/join", carol, None),
            ("PUT member (invites)", "PUT", f"/api/clubs/{clubs[2]}/members/carol", alice, None),
            ("POST join (accepts)", "POST", f"/api/clubs/{clubs[2]}/join", carol, None),
            ("GET members (page)", "GET", f"/api/clubs/{clubs[2]}/members", carol, None),
            ("GET club invitations", "GET", "/api/me/club-invitations", carol, None),
            (
                "DELETE member (leaves)",
                "DELETE",
                f"/api/clubs/{clubs[2]}/members/carol",
                carol,
                None,
            ),
            ("DELETE club", "DELETE", f"/api/clubs/{clubs[3]}", alice, None),
        ]
        results: dict[str, dict[str, int]] = {}
        for label, method, path, who, body in steps:
            store.calls.clear()
            resp = await client.request(method, path, headers=who, json_body=body)
            assert resp.status < 500, (label, resp.status)
            results[label] = {
                "store": sum(store.calls.values()),
                **dict(sorted(store.calls.items())),
            }
            # What follows a change (copies, the call's pushes) runs in the reaction layer
            # (bench/push.py counts the fan-out): drain it so it is not counted against the
            # next request.
            await rt.reactor.drain()
        set_runtime(None)
        await rt.close()
    return results


async def populate(rt: Any, club_id: str, members: int) -> None:
    """`members` more members of a club, written as the join route writes them (a profile, the
    member record, the membership copy) without that many requests; the work settled."""
    from switchboard.services.clubs import member_doc_id

    joined = "2026-01-01T00:00:00+00:00"
    for n in range(members):
        user = f"member-{n:05d}"
        await rt.adapters.store.upsert(
            "users", {"id": user, "pk": user, "userId": user, "displayName": user}
        )
        await rt.adapters.store.upsert(
            "memberships",
            {
                "id": club_id,
                "pk": user,
                "clubId": club_id,
                "userId": user,
                "clubName": "Bench",
                "joinedAt": joined,
            },
        )
        await rt.adapters.store.upsert(
            "clubs",
            {
                "id": member_doc_id(user),
                "pk": club_id,
                "type": "member",
                "clubId": club_id,
                "userId": user,
                "joinedAt": joined,
                "generation": None,
            },
        )
    await rt.reactor.drain()


async def delete_growth(members: int) -> dict[str, Any]:
    """DELETE of a club of `members`: the request's store operations and time (a mark: flat),
    then the purge the reconciler runs in the background, its operations and time."""
    from switchboard.adapters.sqlite_store import SqliteStore
    from switchboard.runtime import set_runtime
    from tests.conftest import Client, make_runtime
    from tests.proxies import spy, spy_of

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        rt = make_runtime(data, store=spy(SqliteStore(data / "delete.sqlite")))
        set_runtime(rt)
        client = Client(rt)
        owner = client.login("owner")
        created = await client.request(
            "POST", "/api/clubs", headers=owner, json_body={"name": "Bench", "visibility": "open"}
        )
        club_id = created.json()["clubId"]
        await populate(rt, club_id, members - 1)
        store = spy_of(rt.adapters.store)
        store.calls.clear()
        started = time.perf_counter()
        resp = await client.request("DELETE", f"/api/clubs/{club_id}", headers=owner)
        request_ms = (time.perf_counter() - started) * 1000
        assert resp.status == 204, resp.status
        request_ops = sum(store.calls.values())
        store.calls.clear()
        started = time.perf_counter()
        await rt.reactor.drain()
        purge_ms = (time.perf_counter() - started) * 1000
        purge_ops = sum(store.calls.values())
        set_runtime(None)
        await rt.close()
    return {
        "members": members,
        "request_store": request_ops,
        "request_ms": round(request_ms, 2),
        "purge_store": purge_ops,
        "purge_ms": round(purge_ms, 1),
    }


def _env(data_dir: Path) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the devserver exited")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the devserver did not start")


async def _readers(base: str) -> dict[str, float]:
    """50 members each read the call at once; ROUNDS rounds, the median round reported."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def login(user: str) -> dict[str, str]:
            resp = await http.post("/api/dev/login", json={"userId": user})
            return {"Authorization": f"Bearer {resp.json()['accessToken']}"}

        members = [await login(f"reader-{n:02}") for n in range(READERS)]
        club = (
            await http.post(
                "/api/clubs", headers=members[0], json={"name": "Bench", "visibility": "open"}
            )
        ).json()["clubId"]
        for who in members[1:]:
            (await http.post(f"/api/clubs/{club}/join", headers=who)).raise_for_status()
        put = await http.put(
            f"/api/clubs/{club}/call", headers=members[0], json={"groupCallId": CALL}
        )
        put.raise_for_status()
        walls: list[float] = []
        latencies: list[float] = []

        async def read(who: dict[str, str]) -> None:
            started = time.perf_counter()
            resp = await http.get(f"/api/clubs/{club}/call", headers=who)
            latencies.append(time.perf_counter() - started)
            assert resp.json()["groupCallId"] == CALL

        await asyncio.gather(*(read(who) for who in members))  # warm-up: connections, caches
        latencies.clear()
        for _ in range(ROUNDS):
            started = time.perf_counter()
            await asyncio.gather(*(read(who) for who in members))
            walls.append(time.perf_counter() - started)
    latencies.sort()
    return {
        "all_50_ms": round(statistics.median(walls) * 1000, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
    }


def concurrent_reads(store: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        procs: list[subprocess.Popen[bytes]] = []
        try:
            if store == "sqlite":
                cmd = [sys.executable, "-m", "switchboard.devserver", "--port", str(port)]
            else:
                endpoint, key = _start_cosmos(data, procs)
                database = f"bench-{uuid.uuid4().hex[:8]}"
                from switchboard.adapters.cosmos_store import create_database_and_containers
                from tests.contract.conftest import TEST_CLIENT_OPTIONS

                asyncio.run(
                    create_database_and_containers(endpoint, database, key, **TEST_CLIENT_OPTIONS)
                )
                cmd = [sys.executable, "-c", COSMOS_DEVSERVER, endpoint, database, key, str(port)]
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=_env(data / "data"),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            _wait(base, procs[-1])
            return asyncio.run(_readers(base))
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=10)


def _start_cosmos(data: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[str, str]:
    from tests.contract.conftest import (
        COSMOS_SERVER_PACKAGE,
        EMULATOR_KEY,
        SERVER_SCRIPT,
        _answers_tls,
    )

    port = _free_port()
    procs.append(
        subprocess.Popen(
            ["node", "-e", SERVER_SCRIPT, str(COSMOS_SERVER_PACKAGE), str(port)],  # noqa: S607 (node from PATH, as tests/contract starts it)
            cwd=ROOT,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    deadline = time.monotonic() + 20
    while not _answers_tls(port):
        if time.monotonic() > deadline:
            raise RuntimeError("cosmosdb-server did not start")
        time.sleep(0.05)
    return f"https://127.0.0.1:{port}", EMULATOR_KEY


def run() -> dict[str, Any]:
    print("clubs: operation counts, 50 concurrent call readers ...", file=sys.stderr)
    return {
        "operations": asyncio.run(operation_counts()),
        "deletes": [asyncio.run(delete_growth(size)) for size in (10, 10_000)],
        "readers": {store: concurrent_reads(store) for store in ("sqlite", "cosmos")},
    }


def report(r: dict[str, Any]) -> str:
    lines = ["", "| clubs: store operations per request | store | detail |", "|---|---|---|"]
    for label, counts in r["operations"].items():
        detail = ", ".join(f"{k}={v}" for k, v in counts.items() if k != "store")
        lines.append(f"| {label} | {counts['store']} | {detail} |")
    lines += [
        "",
        "| DELETE club, members | request: store ops, ms | background purge: store ops, ms |",
        "|---|---|---|",
    ]
    for d in r["deletes"]:
        lines.append(
            f"| {d['members']:,} | {d['request_store']}, {d['request_ms']} "
            f"| {d['purge_store']:,}, {d['purge_ms']} |"
        )
    lines += [
        "",
        f"| {READERS} members read the call at once (devserver, median of {ROUNDS}) "
        "| all answered, ms | p50 ms | max ms |",
        "|---|---|---|---|",
    ]
    for store, d in r["readers"].items():
        name = "SQLite" if store == "sqlite" else "Cosmos test server"
        lines.append(f"| {name} | {d['all_50_ms']} | {d['p50_ms']} | {d['max_ms']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
