"""Chat figures (`make bench`): operations per request counted at the ports, and what creating
many club threads costs locally and would cost under ACS's rate limit.

- `GET /api/threads` for a user with 120 threads: store operations (one query, whatever the count).
- `POST /api/clubs/{clubId}/join` on a club whose thread exists: the club's store operations
  plus chat's, and chat calls (at most one).
- 50 clubs (`POST /api/clubs`, each with its thread) created in a row against the local
  provider (wall time), beside the floor ACS sets: 10 thread creations per 10 s per user, and
  every thread is created by the controller's one service identity.

Nothing is asserted here; the counts are pinned by tests/unit/test_chat_service.py.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any

import azure.functions as func

THREADS_PER_USER = 120
CLUBS_IN_A_ROW = 50
# ACS service limits: create chat thread, per user, per 10 s.
ACS_CREATES_PER_WINDOW = 10
ACS_WINDOW_SECONDS = 10


def acs_floor_seconds(threads: int) -> int:
    """The least time ACS lets one user create `threads` threads: the first window's worth at
    once, then one window per further batch."""
    return max(0, math.ceil(threads / ACS_CREATES_PER_WINDOW) - 1) * ACS_WINDOW_SECONDS


async def _measure(data_dir: Path) -> dict[str, Any]:
    from switchboard.adapters.acs_local import LocalIdentityIssuer
    from switchboard.adapters.chat_local import LocalChatProvider
    from switchboard.adapters.sqlite_store import SqliteStore
    from switchboard.dev.issuer import DevTokenIssuer
    from switchboard.runtime import Adapters, Runtime, build_authenticator, set_runtime
    from switchboard.settings import Settings
    from tests.conftest import app_server
    from tests.proxies import spy, spy_of

    settings = Settings.from_environ({"SWITCHBOARD_DATA_DIR": str(data_dir)})
    issuer = DevTokenIssuer(data_dir)
    rt = Runtime(
        settings,
        Adapters(
            store=spy(SqliteStore(data_dir / "chat.sqlite")),
            identity_provider=spy(LocalIdentityIssuer(data_dir)),
            authenticator=build_authenticator(settings, issuer),
            dev_issuer=issuer,
            chat_provider=spy(LocalChatProvider(data_dir)),
        ),
    )
    set_runtime(rt)
    store, chat = spy_of(rt.adapters.store), spy_of(rt.chat_provider)
    results: dict[str, Any] = {}
    try:
        service = rt.chat
        for n in range(THREADS_PER_USER):
            await service.meeting_listed(f"m{n}", f"Meeting {n}", f"19:m{n}@thread.v2", ["u"])
        server = app_server()  # one per process: azure.functions builds its functions once
        handler = next(f.handler for f in server.http if f.pattern.match("/api/threads"))
        token, _ = issuer.issue("u", "U")
        request = func.HttpRequest(
            method="GET",
            url="http://localhost/api/threads",
            headers={"authorization": f"Bearer {token}"},
            body=b"",
        )
        await handler(request)  # u is a known user (their profile exists) from here on
        store.calls.clear()
        response = await handler(request)
        assert response.status_code == 200
        results["GET /api/threads (120 threads, first page)"] = {
            "store": sum(store.calls.values()),
            "chat": 0,
            **{f"store.{k}": v for k, v in sorted(store.calls.items())},
        }

        async def call(method: str, path: str, user: str, body: bytes = b"") -> Any:
            fn, match = next(
                (f, m) for f in server.http if (m := f.pattern.match(path)) and method in f.methods
            )
            headers = {"authorization": f"Bearer {issuer.issue(user, user.title())[0]}"}
            if body:
                headers["content-type"] = "application/json"
            resp = await fn.handler(
                func.HttpRequest(
                    method=method,
                    url=f"http://localhost{path}",
                    headers=headers,
                    body=body,
                    route_params={k: v for k, v in match.groupdict().items() if v is not None},
                )
            )
            assert resp.status_code < 300, (path, resp.status_code)
            return json.loads(resp.get_body() or b"null")

        club_body = b'{"name": "Bench", "visibility": "open"}'
        club = await call("POST", "/api/clubs", "owner", club_body)
        await call("POST", "/api/token", "joiner")  # a known user: their ACS identity exists
        store.calls.clear()
        chat.calls.clear()
        await call("POST", f"/api/clubs/{club['clubId']}/join", "joiner")
        results["POST /api/clubs/{clubId}/join (thread exists)"] = {
            "store": sum(store.calls.values()),
            "chat": sum(chat.calls.values()),
            **{f"store.{k}": v for k, v in sorted(store.calls.items())},
            **{f"chat.{k}": v for k, v in sorted(chat.calls.items())},
        }

        started = time.perf_counter()
        for _ in range(CLUBS_IN_A_ROW):
            await call("POST", "/api/clubs", "owner", club_body)
        local_seconds = time.perf_counter() - started
        results["clubs_in_a_row"] = {
            "clubs": CLUBS_IN_A_ROW,
            "local_seconds": round(local_seconds, 3),
            "acs_floor_seconds": acs_floor_seconds(CLUBS_IN_A_ROW),
        }
    finally:
        set_runtime(None)
        await rt.close()
    return results


def chat_bench(data_dir: Path) -> dict[str, Any]:
    """Run the chat figures, print their section of the report, return them for latest.json."""
    data_dir.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(_measure(data_dir))
    print("\n".join(report_lines(results)))
    return results


def report_lines(r: dict[str, Any]) -> list[str]:
    lines = ["", "| chat: operations | store | chat | detail |", "|---|---|---|---|"]
    for label, counts in r.items():
        if label == "clubs_in_a_row":
            continue
        detail = ", ".join(f"{k}={v}" for k, v in counts.items() if "." in k)
        lines.append(f"| {label} | {counts['store']} | {counts['chat']} | {detail} |")
    row = r["clubs_in_a_row"]
    lines += [
        "",
        f"| {row['clubs']} clubs (each with its thread) created in a row | seconds |",
        "|---|---|",
        f"| local provider (measured) | {row['local_seconds']} |",
        f"| ACS floor (10 creations / 10 s per user, one service identity) "
        f"| ≥ {row['acs_floor_seconds']} |",
    ]
    return lines
