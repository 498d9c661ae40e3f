"""Friends figures for `make bench`: store operations per route (counted at the store port with
PortSpy) and the time to page through a list of 5,000 friends on SQLite and on the
Cosmos-protocol test server (`@vercel/cosmosdb-server`, started here as the contract tests do).

Nothing is asserted: times change with the machine; the counts are pinned by
tests/unit/test_friends_service.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func

FRIENDS = 5000
PAGE_SIZE = 500  # the API's largest page


def _request(method: str, path: str, token: str) -> tuple[Any, func.HttpRequest]:
    from tests.conftest import app_server  # one per process: get_functions() runs once

    server = app_server()
    for fn in server.http:
        match = fn.pattern.match(path)
        if match and method in fn.methods:
            req = func.HttpRequest(
                method=method,
                url=f"http://localhost{path}",
                headers={"authorization": f"Bearer {token}"},
                route_params={k: v for k, v in match.groupdict().items() if v is not None},
                body=b"",
            )
            return fn.handler, req
    raise LookupError(path)


async def operation_counts(data_dir: Path) -> dict[str, dict[str, int]]:
    """Store operations of each friends route, on the embedded adapters."""
    from switchboard.adapters.acs_local import LocalIdentityIssuer
    from switchboard.adapters.sqlite_store import SqliteStore
    from switchboard.dev.issuer import DevTokenIssuer
    from switchboard.runtime import Adapters, Runtime, build_authenticator, set_runtime
    from switchboard.settings import Settings
    from tests.proxies import spy, spy_of

    settings = Settings.from_environ(
        {"SWITCHBOARD_DATA_DIR": str(data_dir), "PSTN_CALLER_ID": "+18005550100"}
    )
    issuer = DevTokenIssuer(data_dir)
    rt = Runtime(
        settings,
        Adapters(
            store=spy(SqliteStore(data_dir / "friends.sqlite")),
            identity_provider=LocalIdentityIssuer(data_dir),
            authenticator=build_authenticator(settings, issuer),
            dev_issuer=issuer,
        ),
    )
    set_runtime(rt)
    store = spy_of(rt.adapters.store)
    alice, _ = issuer.issue("bench-alice", "Alice")
    bob, _ = issuer.issue("bench-bob", "Bob")
    carol, _ = issuer.issue("bench-carol", "Carol")
    for token in (alice, bob, carol):
        handler, req = _request("POST", "/api/token", token)
        await handler(req)
    steps: list[tuple[str, str, str, str]] = [
        ("PUT /api/friends/{userId} (request)", "PUT", "/api/friends/bench-bob", alice),
        ("PUT /api/friends/{userId} (accept)", "PUT", "/api/friends/bench-alice", bob),
        ("GET /api/friends (one page)", "GET", "/api/friends", alice),
        ("GET /api/friends/{userId}/call-info", "GET", "/api/friends/bench-bob/call-info", alice),
        ("DELETE /api/friends/{userId}", "DELETE", "/api/friends/bench-bob", alice),
        ("PUT /api/blocks/{userId}", "PUT", "/api/blocks/bench-bob", alice),
        ("DELETE /api/blocks/{userId}", "DELETE", "/api/blocks/bench-bob", alice),
        ("POST /api/friends/invites", "POST", "/api/friends/invites", carol),
    ]
    results: dict[str, dict[str, int]] = {}
    for label, method, path, token in steps:
        store.calls.clear()
        handler, req = _request(method, path, token)
        resp = await handler(req)
        assert resp.status_code < 300, (label, resp.status_code)
        results[label] = {"store": sum(store.calls.values()), **dict(sorted(store.calls.items()))}
        if method == "POST" and path.endswith("invites"):
            code = json.loads(resp.get_body())["code"]
    store.calls.clear()
    handler, req = _request("POST", f"/api/friends/invites/{code}", alice)
    resp = await handler(req)
    assert resp.status_code == 200, resp.status_code
    results["POST /api/friends/invites/{code}"] = {
        "store": sum(store.calls.values()),
        **dict(sorted(store.calls.items())),
    }
    set_runtime(None)
    await rt.close()
    return results


async def _seed_and_page(store: Any) -> dict[str, float]:
    """5,000 accepted friends of one user, then the time to page through all of them."""
    from switchboard.services.caller import Caller
    from switchboard.services.friends import FriendsService, friend_doc_id

    owner = "bench-owner"
    docs = [
        {
            "id": friend_doc_id(f"f{i:05d}"),
            "pk": owner,
            "ownerId": owner,
            "userId": f"f{i:05d}",
            "status": "accepted",
            "displayName": f"Friend {(i * 7919) % FRIENDS:05d}",
            "communicationUserId": f"8:acs:f{i:05d}",
            "since": "2026-11-23T12:00:00Z",
        }
        for i in range(FRIENDS)
    ]
    started = time.perf_counter()
    for chunk in range(0, FRIENDS, 50):
        await asyncio.gather(*(store.upsert("friends", d) for d in docs[chunk : chunk + 50]))
    seeded = time.perf_counter() - started
    service = FriendsService(store)
    caller = Caller(owner, "Owner")
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        seen, pages, token = 0, 0, None
        while True:
            page = await service.list_friends(caller, "accepted", PAGE_SIZE, token)
            seen += len(page.items)
            pages += 1
            token = page.continuation
            if token is None:
                break
        samples.append(time.perf_counter() - started)
        assert seen == FRIENDS, seen
    return {
        "friends": FRIENDS,
        "page_size": PAGE_SIZE,
        "pages": pages,
        "page_through_ms": round(sorted(samples)[1] * 1000, 1),
        "seed_s": round(seeded, 1),
    }


async def page_sqlite(data_dir: Path) -> dict[str, float]:
    from switchboard.adapters.sqlite_store import SqliteStore

    store = SqliteStore(data_dir / "page.sqlite")
    try:
        return await _seed_and_page(store)
    finally:
        await store.close()


async def page_cosmos(endpoint: str) -> dict[str, float]:
    """The same on the Cosmos-protocol test server at `endpoint`, in a new database."""
    from switchboard.adapters.cosmos_store import CosmosStore, create_database_and_containers
    from tests.contract.conftest import EMULATOR_KEY, TEST_CLIENT_OPTIONS

    database = f"bench-{uuid.uuid4().hex[:8]}"
    await create_database_and_containers(endpoint, database, EMULATOR_KEY, **TEST_CLIENT_OPTIONS)
    store = CosmosStore(endpoint, database, EMULATOR_KEY, **TEST_CLIENT_OPTIONS)
    try:
        return await _seed_and_page(store)
    finally:
        await store.close()


@contextlib.contextmanager
def cosmos_server(log_dir: Path) -> Iterator[str | None]:
    """`@vercel/cosmosdb-server` started as tests/contract/conftest.py starts it: its endpoint,
    or None when it is not installed or does not start."""
    from tests.contract.conftest import (
        COSMOS_SERVER_BIN,
        COSMOS_SERVER_PACKAGE,
        REPO_ROOT,
        SERVER_SCRIPT,
        _answers_tls,
        _free_port,
    )

    node = shutil.which("node")
    if not COSMOS_SERVER_BIN.exists() or node is None:
        yield None
        return
    port = _free_port()
    with (log_dir / "cosmos.log").open("wb") as log:
        process = subprocess.Popen(
            [node, "-e", SERVER_SCRIPT, str(COSMOS_SERVER_PACKAGE), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
    try:
        deadline = time.monotonic() + 20
        while not _answers_tls(port):
            if process.poll() is not None or time.monotonic() > deadline:
                yield None
                return
            time.sleep(0.05)
        yield f"https://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def friends_bench() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-friends-") as tmp:
        data = Path(tmp)
        for sub in ("counts", "sqlite"):
            (data / sub).mkdir()
        results: dict[str, Any] = {
            "operations": asyncio.run(operation_counts(data / "counts")),
            "page_sqlite": asyncio.run(page_sqlite(data / "sqlite")),
        }
        with cosmos_server(data) as endpoint:
            results["page_cosmos"] = (
                asyncio.run(page_cosmos(endpoint))
                if endpoint
                else "cosmosdb-server not available (npm ci)"
            )
        return results


def report_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        "| friends: store operations per request | total | detail |",
        "|---|---|---|",
    ]
    for label, counts in r["operations"].items():
        detail = ", ".join(f"{k}={v}" for k, v in counts.items() if k != "store")
        lines.append(f"| {label} | {counts['store']} | {detail} |")
    lines += [
        "",
        f"| paging {FRIENDS:,} friends ({PAGE_SIZE} per page) | pages | ms (median of 3) |",
        "|---|---|---|",
    ]
    for label, key in (("SQLite", "page_sqlite"), ("Cosmos-protocol server", "page_cosmos")):
        d = r[key]
        if isinstance(d, str):
            lines.append(f"| {label} | - | {d} |")
        else:
            lines.append(f"| {label} | {d['pages']} | {d['page_through_ms']} |")
    return lines


if __name__ == "__main__":
    print("\n".join(report_lines(friends_bench())))
