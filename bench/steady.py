"""Steady state of every hot read route beside its FLOOR, measured side by side in one run.

For each route, the floor is the work any implementation of it must do, written directly with
PyJWT, sqlite3 and json and nothing of Switchboard (bench/floor_app.py's approach, one function
per route): verify the caller's RS256 app token, the same store reads on an equivalent SQLite
table (the same page size, an index on the sort key), and the JSON answer.

- `POST /api/token` (known user): verify, one primary-key read, one ES256 sign;
- `GET /api/clubs/{id}/call` (a member): verify, one read of the club, the caller's member
  document and the call (three keys, one statement), JSON;
- `GET /api/threads` (120 threads): verify, the first page (50) by `since` descending, JSON;
- `GET /api/friends` (5,000 friends): verify, a page of 100 accepted friends by name, JSON.

Switchboard runs the registered handler in process (`func.HttpRequest`, as the host calls it)
on the embedded adapters (SQLite, local ACS issuer). Both sides run in alternating rounds in one
process, so machine load falls on both alike; each figure is the median of all rounds, and the
ratio is what the README quotes. Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ROUNDS = 12
PER_ROUND = 100
THREADS = 120
FRIENDS = 5_000
NOW = "2026-11-23T12:00:00Z"
GID = "5b2c9c3e-0f1a-4d7e-9a44-8e2b51c0d6a1"


class Floor:
    """The floor work of each route on its own SQLite file and keys."""

    def __init__(self, data: Path) -> None:
        app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        pem = app_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key: Any = serialization.load_pem_public_key(pem)
        now = int(time.time())
        self.token = jwt.encode(
            {"iss": "floor", "aud": "floor", "sub": "floor-user", "iat": now, "exp": now + 86400},
            app_key,
            algorithm="RS256",
        )
        self.db = sqlite3.connect(data / "floor.sqlite", isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute(
            "CREATE TABLE docs (pk TEXT, id TEXT, sort TEXT, status TEXT, body TEXT, "
            "PRIMARY KEY (pk, id)) WITHOUT ROWID"
        )
        self.db.execute("CREATE INDEX docs_sort ON docs (pk, status, sort, id)")
        rows: list[tuple[str, str, str | None, str | None, str]] = [
            ("floor-user", "user", None, None, json.dumps({"acsId": "8:acs:floor"}))
        ]
        rows += [
            ("club", key, None, None, json.dumps({"id": key, "groupCallId": GID, "n": 1}))
            for key in ("club", "member:floor-user", "call")
        ]
        rows += [
            (
                "threads",
                f"t{i:04d}",
                f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                "",
                json.dumps({"threadId": f"19:{i}", "kind": "club", "topic": f"Club {i}"}),
            )
            for i in range(THREADS)
        ]
        rows += [
            (
                "friends",
                f"friend:f{i:05d}",
                f"Friend {(i * 7919) % FRIENDS:05d}",
                "accepted",
                json.dumps(
                    {
                        "userId": f"f{i:05d}",
                        "displayName": f"Friend {(i * 7919) % FRIENDS:05d}",
                        "communicationUserId": f"8:acs:f{i:05d}",
                        "status": "accepted",
                        "since": NOW,
                    }
                ),
            )
            for i in range(FRIENDS)
        ]
        self.db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?)", rows)

    def _caller(self) -> str:
        claims = jwt.decode(
            self.token, self.public_key, algorithms=["RS256"], audience="floor", issuer="floor"
        )
        return str(claims["sub"])

    def token_route(self) -> bytes:
        sub = self._caller()
        row = self.db.execute("SELECT body FROM docs WHERE pk = ? AND id = 'user'", (sub,))
        user = json.loads(row.fetchone()[0])
        now = int(time.time())
        token = jwt.encode(
            {"sub": user["acsId"], "scope": "chat,voip", "iat": now, "exp": now + 3600},
            self.signing_key,
            algorithm="ES256",
        )
        return json.dumps({"token": token, "user": {"communicationUserId": user["acsId"]}}).encode()

    def call_route(self) -> bytes:
        self._caller()
        found = {
            key: json.loads(body)
            for key, body in self.db.execute(
                "SELECT id, body FROM docs WHERE pk = 'club' AND id IN (?, ?, ?)",
                ("club", "member:floor-user", "call"),
            )
        }
        call = found["call"]
        return json.dumps({"groupCallId": call["groupCallId"], "startedBy": "x"}).encode()

    def threads_route(self) -> bytes:
        self._caller()
        rows = self.db.execute(
            "SELECT body FROM docs WHERE pk = 'threads' AND status = '' "
            "ORDER BY sort DESC, id DESC LIMIT 51"
        ).fetchall()
        items = [json.loads(body) for (body,) in rows[:50]]
        return json.dumps({"items": items, "continuation": "next"}).encode()

    def friends_route(self) -> bytes:
        self._caller()
        rows = self.db.execute(
            "SELECT body FROM docs WHERE pk = 'friends' AND status = 'accepted' "
            "ORDER BY sort, id LIMIT 101"
        ).fetchall()
        items = [json.loads(body) for (body,) in rows[:100]]
        return json.dumps({"items": items, "continuation": "next"}).encode()


async def _switchboard(data: Path) -> tuple[Any, dict[str, Callable[[], Awaitable[Any]]]]:
    """The app on the embedded adapters, seeded like the floor; one request maker per route."""
    from switchboard.runtime import set_runtime
    from switchboard.services.friends import friend_doc_id
    from tests.conftest import Client, make_runtime

    runtime = make_runtime(data)
    set_runtime(runtime)
    client = Client(runtime)
    store = runtime.adapters.store
    alice = client.login("alice", "Alice")
    await client.request("POST", "/api/token", headers=alice)
    club = await client.request(
        "POST", "/api/clubs", headers=alice, json_body={"name": "Chess", "visibility": "open"}
    )
    club_id = club.json()["clubId"]
    await client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=alice, json_body={"groupCallId": GID}
    )
    for start in range(0, THREADS, 60):
        await asyncio.gather(
            *(
                store.upsert(
                    "threads",
                    {
                        "id": f"t{i:04d}",
                        "pk": "alice",
                        "threadId": f"19:{uuid.uuid4().hex}@thread.v2",
                        "kind": "club",
                        "topic": f"Club {i}",
                        "clubId": f"c{i}",
                        "meetingId": None,
                        "userId": None,
                        "since": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                    },
                )
                for i in range(start, min(start + 60, THREADS))
            )
        )
    for start in range(0, FRIENDS, 250):
        await asyncio.gather(
            *(
                store.upsert(
                    "friends",
                    {
                        "id": friend_doc_id(f"f{i:05d}"),
                        "pk": "alice",
                        "ownerId": "alice",
                        "userId": f"f{i:05d}",
                        "status": "accepted",
                        "displayName": f"Friend {(i * 7919) % FRIENDS:05d}",
                        "communicationUserId": f"8:acs:f{i:05d}",
                        "since": NOW,
                    },
                )
                for i in range(start, start + 250)
            )
        )
    body = {"scopes": ["chat", "voip"], "expiresInMinutes": 60}
    requests: dict[str, Callable[[], Awaitable[Any]]] = {
        "POST /api/token (known user)": lambda: client.request(
            "POST", "/api/token", headers=alice, json_body=body
        ),
        "GET /api/clubs/{id}/call (member)": lambda: client.request(
            "GET", f"/api/clubs/{club_id}/call", headers=alice
        ),
        f"GET /api/threads ({THREADS} threads, first page)": lambda: client.request(
            "GET", "/api/threads", headers=alice
        ),
        f"GET /api/friends ({FRIENDS:,} friends, page of 100)": lambda: client.request(
            "GET", "/api/friends", headers=alice, params={"status": "accepted"}
        ),
    }
    return client, requests


async def _run(data: Path) -> list[dict[str, Any]]:
    floor = Floor(data)
    client, requests = await _switchboard(data / "app")
    floors: dict[str, Callable[[], bytes]] = dict(
        zip(
            requests,
            (floor.token_route, floor.call_route, floor.threads_route, floor.friends_route),
            strict=True,
        )
    )
    samples: dict[str, dict[str, list[int]]] = {r: {"floor": [], "app": []} for r in requests}
    for route, request in requests.items():  # warm-up: caches, first builds, the shape's index
        for _ in range(50):
            assert (await request()).status < 300, route
            floors[route]()
    for _ in range(ROUNDS):
        for route, request in requests.items():
            work = floors[route]
            for _ in range(PER_ROUND):
                started = time.perf_counter_ns()
                work()
                samples[route]["floor"].append(time.perf_counter_ns() - started)
            for _ in range(PER_ROUND):
                started = time.perf_counter_ns()
                response = await request()
                samples[route]["app"].append(time.perf_counter_ns() - started)
                assert response.status < 300, (route, response.status)
    from switchboard.runtime import set_runtime

    set_runtime(None)
    await client.runtime.close()
    floor.db.close()
    rows = []
    for route, sides in samples.items():
        floor_ms = statistics.median(sides["floor"]) / 1e6
        app_ms = statistics.median(sides["app"]) / 1e6
        rows.append(
            {
                "route": route,
                "floor_ms": round(floor_ms, 3),
                "app_ms": round(app_ms, 3),
                "ratio": round(app_ms / floor_ms, 2),
            }
        )
    return rows


def run() -> list[dict[str, Any]]:
    print("steady state beside the floors ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-steady-") as tmp:
        data = Path(tmp)
        (data / "app").mkdir()
        return asyncio.run(_run(data))


def report_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"| steady state, in process (median of {ROUNDS * PER_ROUND}, alternating rounds) "
        "| floor ms | Switchboard ms | ratio |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['route']} | {r['floor_ms']} | {r['app_ms']} | {r['ratio']}x |")
    return lines


def main() -> None:
    print("\n".join(report_lines(run())))


if __name__ == "__main__":
    main()
