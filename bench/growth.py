"""Growth figures for `make bench`: does a request cost the same with little data and at the cap?

Each row runs one route in process (the registered handler, as the Functions host calls it) on
the embedded adapters, over a SQLite store seeded small and then at the cap, and reports the
store operations of one request (counted at the port with PortSpy) and the median time of
RUNS requests at each size, with their ratio. A flat route has the same operations and a ratio
near 1; a route that reads what it does not return grows with the data.

- friends page: the middle page (50 per page) of 100 and of 5,000 accepted friends;
- members page: the middle page (5 per page) of a club of 10 and of 10,000 members;
- agenda: one day holding one meeting, with none and with 1,000 meetings ahead of it;
- friend request: a new request by a user with 1 and with 4,999 relations (the cap is 5,000);
- club-call push fan-out: bench/push.py's figures (10 / 1,000 / 10,000 members), whatever
  implementation is in place (it waits for the sends, not for a particular function).

Documents are seeded in the services' own shapes straight into the store (seeding 10,000 members
through the join route would take minutes and measure nothing). Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

RUNS = 60
NOW = "2026-11-23T12:00:00Z"


async def _world(data: Path) -> Any:
    from switchboard.adapters.sqlite_store import SqliteStore
    from switchboard.runtime import set_runtime
    from tests.conftest import Client, make_runtime
    from tests.proxies import spy

    runtime = make_runtime(data, store=spy(SqliteStore(data / "growth.sqlite")))
    set_runtime(runtime)
    return Client(runtime)


async def _close(client: Any) -> None:
    from switchboard.runtime import set_runtime

    set_runtime(None)
    await client.runtime.close()


def _calls(client: Any) -> Any:
    from tests.proxies import spy_of

    return spy_of(client.runtime.adapters.store).calls


async def _measure(
    client: Any, request: Callable[[], Awaitable[Any]], undo: Callable[[], Awaitable[Any]] | None
) -> dict[str, Any]:
    """Store operations of one request and the median ms of RUNS (after 10 warm-up runs)."""
    samples: list[float] = []
    ops: dict[str, int] = {}
    for run in range(RUNS + 10):
        _calls(client).clear()
        started = time.perf_counter()
        response = await request()
        elapsed = time.perf_counter() - started
        assert response.status < 300, (response.status, response.body[:300])
        if run == 0:
            ops = dict(sorted(_calls(client).items()))
        if run >= 10:
            samples.append(elapsed)
        if undo is not None:
            await undo()
    return {"ops": ops, "ms": round(statistics.median(samples) * 1000, 3)}


async def _upsert_all(store: Any, container: str, docs: list[dict[str, Any]]) -> None:
    for start in range(0, len(docs), 200):
        await asyncio.gather(*(store.upsert(container, d) for d in docs[start : start + 200]))


async def _profiles(store: Any, users: list[str]) -> None:
    await _upsert_all(
        store,
        "users",
        [
            {"id": u, "pk": u, "userId": u, "displayName": u.title(), "communicationUserId": None}
            for u in users
        ],
    )


async def _middle_page(
    client: Any, path: str, headers: dict[str, str], params: dict[str, str], pages: int
) -> dict[str, str]:
    """The query parameters of the page half-way through `pages` pages."""
    token = None
    for _ in range(pages // 2):
        page = await client.request(
            "GET",
            path,
            headers=headers,
            params={**params, **({"continuation": token} if token else {})},
        )
        token = page.json()["continuation"]
    return {**params, **({"continuation": token} if token else {})}


async def friends_page(size: int, data: Path) -> dict[str, Any]:
    from switchboard.services.friends import friend_doc_id

    client = await _world(data)
    store = client.runtime.adapters.store
    owner = client.login("owner", "Owner")
    await client.request("GET", "/api/me", headers=owner)
    await _upsert_all(
        store,
        "friends",
        [
            {
                "id": friend_doc_id(f"f{i:05d}"),
                "pk": "owner",
                "ownerId": "owner",
                "userId": f"f{i:05d}",
                "status": "accepted",
                "displayName": f"Friend {(i * 7919) % size:05d}",
                "communicationUserId": f"8:acs:f{i:05d}",
                "since": NOW,
            }
            for i in range(size)
        ],
    )
    params = await _middle_page(
        client, "/api/friends", owner, {"status": "accepted", "pageSize": "50"}, size // 50
    )
    result = await _measure(
        client,
        lambda: client.request("GET", "/api/friends", headers=owner, params=params),
        None,
    )
    await _close(client)
    return result


async def members_page(size: int, data: Path) -> dict[str, Any]:
    from switchboard.services.clubs import member_doc_id

    client = await _world(data)
    store = client.runtime.adapters.store
    owner = client.login("owner", "Owner")
    club = await client.request(
        "POST", "/api/clubs", headers=owner, json_body={"name": "Big", "visibility": "open"}
    )
    club_id = club.json()["clubId"]
    members = [f"m{i:05d}" for i in range(size - 1)]
    await _profiles(store, members)
    await _upsert_all(
        store,
        "clubs",
        [
            {
                "id": member_doc_id(m),
                "pk": club_id,
                "type": "member",
                "clubId": club_id,
                "userId": m,
                "joinedAt": f"2026-11-23T12:{i // 600:02d}:{(i // 10) % 60:02d}.{i % 10}00000Z",
            }
            for i, m in enumerate(members)
        ],
    )
    path = f"/api/clubs/{club_id}/members"
    params = await _middle_page(client, path, owner, {"limit": "5"}, size // 5)
    result = await _measure(
        client, lambda: client.request("GET", path, headers=owner, params=params), None
    )
    await _close(client)
    return result


async def agenda(ahead: int, data: Path) -> dict[str, Any]:
    client = await _world(data)
    store = client.runtime.adapters.store
    user = client.login("planner", "Planner")
    await client.request("GET", "/api/me", headers=user)

    def entry(meeting_id: str, start: str, end: str) -> dict[str, Any]:
        return {
            "id": meeting_id,
            "pk": "planner",
            "userId": "planner",
            "role": "organizer",
            "meetingId": meeting_id,
            "subject": "Meeting",
            "start": start,
            "end": end,
            "joinUrl": f"https://local.invalid/meetings/{meeting_id}",
            "threadId": None,
            "joinMeetingId": None,
            "passcode": None,
            "organizerId": "planner",
            "invitees": [],
            "provider": "local",
        }

    docs = [entry("today", "2030-05-01T09:00:00Z", "2030-05-01T10:00:00Z")]
    for i in range(ahead):  # one a day (and a few a day) in the days after
        day = 2 + i // 4
        docs.append(
            entry(
                f"ahead{i:05d}",
                f"2030-{5 + day // 28:02d}-{1 + day % 28:02d}T{8 + i % 4:02d}:00:00Z",
                f"2030-{5 + day // 28:02d}-{1 + day % 28:02d}T{8 + i % 4:02d}:30:00Z",
            )
        )
    await _upsert_all(store, "agenda", docs)
    params = {"date": "2030-05-01", "tz": "UTC"}
    result = await _measure(
        client, lambda: client.request("GET", "/api/meetings", headers=user, params=params), None
    )
    await _close(client)
    return result


async def friend_request(relations: int, data: Path) -> dict[str, Any]:
    from switchboard.services.friends import friend_doc_id

    client = await _world(data)
    store = client.runtime.adapters.store
    alice = client.login("alice", "Alice")
    await client.request("GET", "/api/me", headers=alice)
    await _profiles(store, ["target"])
    await _upsert_all(
        store,
        "friends",
        [
            {
                "id": friend_doc_id(f"r{i:05d}"),
                "pk": "alice",
                "ownerId": "alice",
                "userId": f"r{i:05d}",
                "status": "accepted",
                "displayName": f"R {i}",
                "communicationUserId": None,
                "since": NOW,
            }
            for i in range(relations)
        ],
    )
    result = await _measure(
        client,
        lambda: client.request("PUT", "/api/friends/target", headers=alice),
        lambda: client.request("DELETE", "/api/friends/target", headers=alice),
    )
    await _close(client)
    return result


CASES: list[
    tuple[str, Callable[[int, Path], Coroutine[Any, Any, dict[str, Any]]], int, int, str]
] = [
    ("GET /api/friends (middle page of 50)", friends_page, 100, 5_000, "friends"),
    ("GET /api/clubs/{id}/members (middle page of 5)", members_page, 10, 10_000, "members"),
    ("GET /api/meetings?date= (agenda of a day)", agenda, 0, 1_000, "meetings ahead"),
    ("PUT /api/friends/{userId} (new request)", friend_request, 1, 4_999, "relations"),
]


def run() -> list[dict[str, Any]]:
    print("growth: small and at the cap ...", file=sys.stderr)
    rows = []
    for label, case, small, cap, unit in CASES:
        measured: list[dict[str, Any]] = []
        for size in (small, cap):
            with tempfile.TemporaryDirectory(prefix="switchboard-bench-growth-") as tmp:
                measured.append(asyncio.run(case(size, Path(tmp))))
        rows.append(
            {
                "route": label,
                "unit": unit,
                "small": small,
                "cap": cap,
                "small_ops": measured[0]["ops"],
                "cap_ops": measured[1]["ops"],
                "small_ms": measured[0]["ms"],
                "cap_ms": measured[1]["ms"],
                "ratio": round(measured[1]["ms"] / measured[0]["ms"], 2),
            }
        )
    return rows


def _ops(ops: dict[str, int]) -> str:
    return f"{sum(ops.values())} ({', '.join(f'{k}={v}' for k, v in ops.items())})"


def report_lines(rows: list[dict[str, Any]], fan_out: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"| growth (SQLite, in process, median of {RUNS}) | small → cap | store ops small "
        "| store ops at cap | ms small | ms at cap | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['route']} | {r['small']:,} → {r['cap']:,} {r['unit']} | {_ops(r['small_ops'])} "
            f"| {_ops(r['cap_ops'])} | {r['small_ms']} | {r['cap_ms']} | {r['ratio']}x |"
        )
    instant = [c for c in fan_out if c["hub"] == "instant"]
    if instant:
        base = instant[0]
        for c in instant:
            lines.append(
                f"| club-call push fan-out (instant hub) | {c['members']:,} members "
                f"| {base['background_store']} | {c['background_store']} "
                f"| {base['fan_out_ms']} | {c['fan_out_ms']} "
                f"| {round(c['fan_out_ms'] / base['fan_out_ms'], 1)}x "
                f"(members {c['members'] // base['members']:,}x) |"
            )
    return lines


def main() -> None:
    print("\n".join(report_lines(run(), [])))


if __name__ == "__main__":
    main()
