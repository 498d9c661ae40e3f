"""SqliteStore's own behaviour beyond the shared contract: a real file that outlives the process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.ports import DocumentExists, DocumentNotFound


async def test_documents_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data" / "store.sqlite"  # the directory is created too
    first = SqliteStore(path)
    created = await first.create("users", {"id": "u1", "pk": "u1", "displayName": "Ada"})
    await first.close()

    reopened = SqliteStore(path)
    try:
        assert await reopened.read("users", "u1", "u1") == created
        page = await reopened.query("users", "u1")
        assert page.items == [created]
    finally:
        await reopened.close()


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = SqliteStore(path)
    await store.ping()
    try:
        with sqlite3.connect(path) as other:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await store.close()


async def test_two_stores_on_one_file_still_let_only_one_create_win(tmp_path: Path) -> None:
    # Two stores stand for two processes: each has its own connection to the same file.
    path = tmp_path / "store.sqlite"
    one, two = SqliteStore(path), SqliteStore(path)
    try:
        attempts = [
            (one if n % 2 else two).create("users", {"id": "u", "pk": "u", "n": n})
            for n in range(20)
        ]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        assert sum(isinstance(r, dict) for r in results) == 1
        assert sum(isinstance(r, DocumentExists) for r in results) == 19
    finally:
        await one.close()
        await two.close()


async def test_waiting_on_the_file_does_not_block_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = SqliteStore(path, busy_timeout=0.3)
    await store.ping()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    # Counts turns of the event loop. If the store blocked the loop while it waited for the
    # lock, no turn could happen between the call and the assertion: any count above zero proves
    # the loop ran, however loaded the machine (no wall-clock threshold).
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        with pytest.raises(DependencyUnavailable):  # after waiting 0.3 s for the lock
            await store.upsert("users", {"id": "u1", "pk": "u1"})
        assert ticks > 0, "the event loop kept running while the store waited"
        # Reads go on while someone else writes: that is what WAL mode is for.
        assert await store.read("users", "u1", "u1") is None
    finally:
        ticker.cancel()
        other.execute("ROLLBACK")
        other.close()
        await store.close()


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    await store.close()
    await store.close()  # closing twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        await store.read("users", "u1", "u1")


async def test_an_unusable_file_is_unavailable(tmp_path: Path) -> None:
    directory_in_the_way = tmp_path / "store.sqlite"
    directory_in_the_way.mkdir()
    store = SqliteStore(directory_in_the_way)
    try:
        with pytest.raises(DependencyUnavailable):
            await store.ping()
        with pytest.raises(DependencyUnavailable):
            await store.read("users", "u1", "u1")
    finally:
        await store.close()


async def test_order_by_keeps_documents_without_the_field_as_cosmos_does(tmp_path: Path) -> None:
    # Cosmos DB returns them too (undefined sorts first ascending); the local Cosmos-protocol
    # server leaves them out, so this half of the behaviour is pinned here and not in the contract.
    store = SqliteStore(tmp_path / "store.sqlite")
    try:
        fields_by_id: list[tuple[str, dict[str, int | None]]] = [
            ("a", {"n": 2}),
            ("b", {}),
            ("c", {"n": 1}),
            ("d", {"n": None}),
        ]
        for id, fields in fields_by_id:
            await store.create("users", {"id": id, "pk": "p", **fields})
        ids: dict[bool, list[str]] = {}
        for descending in (False, True):
            ids[descending] = []
            continuation = None
            while True:
                page = await store.query(
                    "users",
                    "p",
                    order_by="n",
                    descending=descending,
                    limit=1,
                    continuation=continuation,
                )
                ids[descending] += [d["id"] for d in page.items]
                continuation = page.continuation
                if continuation is None:
                    break
        assert ids[False] == ["b", "d", "c", "a"]  # null and absent first, then by id
        assert ids[True] == ["a", "c", "d", "b"]
    finally:
        await store.close()


# --- inline point reads (a second, read-only connection on the caller's thread) ----------


async def test_point_reads_do_not_wait_for_the_worker_thread(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    created = await store.create("users", {"id": "u1", "pk": "u1"})
    release = threading.Event()
    store._worker.submit(release.wait)  # the worker is now busy until released
    try:
        # A point read answers at once, on this thread; through the worker it would hang.
        assert await asyncio.wait_for(store.read("users", "u1", "u1"), timeout=30) == created
        assert await asyncio.wait_for(store.read("users", "u1", "nope"), timeout=30) is None
    finally:
        release.set()
        await store.close()


async def test_a_point_read_queues_on_the_worker_when_the_reader_is_taken(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    created = await store.create("users", {"id": "u1", "pk": "u1"})
    try:
        with store._reader_lock:  # as if another thread were reading on it
            assert await store.read("users", "u1", "u1") == created
    finally:
        await store.close()


async def test_point_reads_see_writes_of_another_connection_at_once(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    reader, writer = SqliteStore(path), SqliteStore(path)
    try:
        assert await reader.read("users", "u1", "u1") is None
        created = await writer.create("users", {"id": "u1", "pk": "u1", "n": 1})
        assert await reader.read("users", "u1", "u1") == created
        replaced = await writer.replace("users", {**created, "n": 2}, created["_etag"])
        assert await reader.read("users", "u1", "u1") == replaced
        await writer.delete("users", "u1", "u1")
        assert await reader.read("users", "u1", "u1") is None
    finally:
        await reader.close()
        await writer.close()


async def test_a_closed_store_refuses_point_reads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    await store.create("users", {"id": "u1", "pk": "u1"})
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.read("users", "u1", "u1")


# --- query plans: every query shape reads its index in order ---------------------------


class PlanRecordingStore(SqliteStore):
    """A SqliteStore that records `EXPLAIN QUERY PLAN` of every query and count it runs."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.plans: list[tuple[str, list[str]]] = []

    def _select(
        self, db: sqlite3.Connection, sql: str, params: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
        self.plans.append((sql, plan))
        return super()._select(db, sql, params)


def assert_indexed(plans: list[tuple[str, list[str]]]) -> None:
    """Each statement searches one index (a shape's own, or the primary key) with the
    partition as its prefix, and never sorts nor scans."""
    assert plans
    for sql, plan in plans:
        detail = " | ".join(plan)
        assert len(plan) == 1, f"{detail}\n{sql}"
        assert plan[0].startswith("SEARCH documents USING "), f"{detail}\n{sql}"
        assert "pk=?" in plan[0], f"{detail}\n{sql}"
        assert "TEMP B-TREE" not in detail, f"{detail}\n{sql}"
        assert "SCAN" not in detail, f"{detail}\n{sql}"


async def test_every_query_shape_reads_its_index_in_order(tmp_path: Path) -> None:
    store = PlanRecordingStore(tmp_path / "store.sqlite")
    try:
        for n in range(40):
            await store.create(
                "friends",
                {
                    "id": f"f{n:02}",
                    "pk": "u",
                    "status": ["accepted", "incoming", "blocked"][n % 3],
                    "displayName": None if n % 7 == 0 else f"name {n % 11}",
                    "n": n,
                    "flag": n % 2 == 0,
                },
            )
        shapes: list[dict[str, Any]] = [
            {},
            {"where": {"status": "accepted"}},
            {"where": {"status": "accepted", "flag": True}},
            {"where": {"n": 3}},
            {"where": {"displayName": None}},
            {"order_by": "displayName"},
            {"order_by": "n"},
            {"where": {"status": "accepted"}, "order_by": "displayName"},
            {"order_by": "displayName", "start_at": "name 2", "end_before": "name 5"},
            {"order_by": "n", "start_at": 10},
            {"order_by": "n", "end_before": 30},
        ]
        for shape in shapes:
            for descending in (False, True):
                seen: list[str] = []
                continuation = None
                while True:
                    page = await store.query(
                        "friends",
                        "u",
                        descending=descending,
                        limit=3,
                        continuation=continuation,
                        **shape,
                    )
                    seen += [d["id"] for d in page.items]
                    continuation = page.continuation
                    if continuation is None:
                        break
                assert len(seen) == len(set(seen))  # every page continued where it stopped
        # The first page of `order_by` without a range runs NULLs (7 of them here) on ascending
        # pages of 3, so the continuation from a NULL key into the values ran too.
        assert await store.count("friends", "u") == 40
        assert await store.count("friends", "u", where_not={"status": "blocked"}) == 27
        assert await store.count("friends", "u", where={"status": "blocked"}) == 13
        assert_indexed(store.plans)
        names = {plan[0].split(" USING ")[1].split(" (")[0] for _, plan in store.plans}
        assert "INDEX ix_friends__status__displayName" in names
        assert "INDEX ix_friends__displayName" in names
        assert "PRIMARY KEY" in names
    finally:
        await store.close()


async def test_a_shape_whose_index_is_gone_fails_instead_of_scanning(tmp_path: Path) -> None:
    # INDEXED BY: were the query's expression and its index ever to drift apart, SQLite refuses
    # the statement; it never quietly falls back to reading the whole partition.
    path = tmp_path / "store.sqlite"
    store = SqliteStore(path)
    try:
        await store.create("friends", {"id": "a", "pk": "u", "status": "accepted"})
        await store.query("friends", "u", where={"status": "accepted"})
        with sqlite3.connect(path) as other:
            other.execute('DROP INDEX "ix_friends__status"')
        with pytest.raises(sqlite3.OperationalError, match="no such index"):
            await store.query("friends", "u", where={"status": "accepted"})
    finally:
        await store.close()


async def test_the_services_queries_all_read_an_index(tmp_path: Path) -> None:
    # The app's own queries, through its routes: friends pages and the cap's count, a club's
    # members, the agenda, the threads list.
    from switchboard.runtime import set_runtime
    from tests.conftest import Client, make_runtime

    store = PlanRecordingStore(tmp_path / "switchboard.sqlite")
    runtime = make_runtime(tmp_path, store=store)
    set_runtime(runtime)
    client = Client(runtime)
    try:
        alice, bob, carol = client.login("alice"), client.login("bob"), client.login("carol")
        for headers in (alice, bob, carol):
            assert (await client.request("GET", "/api/me", headers=headers)).status == 200
        assert (await client.request("PUT", "/api/friends/bob", headers=alice)).status == 200
        assert (await client.request("PUT", "/api/friends/alice", headers=bob)).status == 200
        assert (await client.request("PUT", "/api/friends/carol", headers=alice)).status == 200
        for status in ("accepted", "outgoing", "incoming"):
            listed = await client.request(
                "GET", "/api/friends", headers=alice, params={"status": status, "pageSize": "1"}
            )
            assert listed.status == 200
        club = await client.request(
            "POST", "/api/clubs", headers=alice, json_body={"name": "Chess", "visibility": "open"}
        )
        assert club.status == 201
        club_id = club.json()["clubId"]
        assert (
            await client.request("POST", f"/api/clubs/{club_id}/join", headers=bob)
        ).status == 200
        members = await client.request("GET", f"/api/clubs/{club_id}/members", headers=alice)
        assert members.status == 200
        assert (await client.request("GET", "/api/clubs", headers=bob)).status == 200
        meeting = await client.request(
            "POST",
            "/api/meetings",
            headers=alice,
            json_body={
                "subject": "Review",
                "start": "2030-05-01T09:00:00Z",
                "end": "2030-05-01T10:00:00Z",
                "invitees": ["bob"],
            },
        )
        assert meeting.status == 201
        agenda = await client.request(
            "GET", "/api/meetings", headers=bob, params={"date": "2030-05-01", "tz": "UTC"}
        )
        assert agenda.status == 200
        assert len(agenda.json()["items"]) == 1
        assert (await client.request("GET", "/api/threads", headers=bob)).status == 200
        statements = " ".join(sql for sql, _ in store.plans)
        assert "count(*)" in statements  # the friends cap counted
        assert_indexed(store.plans)
    finally:
        set_runtime(None)
        await runtime.close()


# --- time to live --------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as raw:
        return raw.execute("SELECT container, pk, id FROM documents ORDER BY 1, 2, 3").fetchall()


async def test_expired_documents_are_gone_at_once_and_removed_from_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite"
    clock = Clock(1_800_000_000)
    store = SqliteStore(path, clock=clock)
    try:
        await store.create("invites", {"id": "short", "pk": "c", "ttl": 10, "kind": "x"})
        await store.create("invites", {"id": "never", "pk": "c", "ttl": -1, "kind": "x"})
        await store.create("invites", {"id": "default", "pk": "c", "kind": "x"})  # default -1
        await store.create("friends", {"id": "off", "pk": "u", "ttl": 10})  # TTL off: kept
        later = await store.create("phone", {"id": "later", "pk": "p", "ttl": 100})
        clock.now += 11
        assert await store.read("invites", "c", "short") is None
        assert await store.read_many("invites", [("c", "short"), ("c", "never")]) == [
            await store.read("invites", "c", "never")
        ]
        assert [d["id"] for d in (await store.query("invites", "c")).items] == [
            "default",
            "never",
        ]
        assert await store.count("invites", "c", where={"kind": "x"}) == 2
        assert await store.read("friends", "u", "off") is not None
        # The expired one is gone for writes too, as in Cosmos DB.
        with pytest.raises(DocumentNotFound):
            await store.replace("invites", {"id": "short", "pk": "c"}, "any")
        assert await store.delete("invites", "c", "short") is False
        # A write a TTL later moves the expiry: `ttl` counts from the last write.
        clock.now += 50
        rewritten = await store.replace("phone", {**later, "n": 1}, later["_etag"])
        clock.now += 60
        assert await store.read("phone", "p", "later") == rewritten
        # The writer purges on its next write, at most a minute after the last purge.
        await store.create("invites", {"id": "short2", "pk": "c", "ttl": 5})
        clock.now += 61
        await store.upsert("users", {"id": "u2", "pk": "u2"})
        assert ("invites", "c", "short2") not in rows(path)
        assert ("invites", "c", "short") not in rows(path)
        assert ("invites", "c", "never") in rows(path)
        # An expired id can be created again.
        created = await store.create("invites", {"id": "short2", "pk": "c"})
        assert await store.read("invites", "c", "short2") == created
    finally:
        await store.close()


async def test_a_version_1_file_gets_its_expiry_from_the_documents(tmp_path: Path) -> None:
    # A file written before expiry existed: its rows get `expires` from their own `ttl` (and the
    # container's default) when a new version opens it; old records past their TTL go.
    path = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE documents (container TEXT NOT NULL, pk TEXT NOT NULL, id TEXT NOT NULL,"
            " etag TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL,"
            " PRIMARY KEY (container, pk, id)) WITHOUT ROWID"
        )
        old.execute("PRAGMA user_version=1")
        old.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, 'e', ?, ?)",
            [
                ("phone", "p", "old", 1_000, '{"id":"old","pk":"p","ttl":2592000}'),
                ("phone", "p", "new", 1_800_000_000, '{"id":"new","pk":"p","ttl":2592000}'),
                ("phone", "p", "kept", 1_000, '{"id":"kept","pk":"p"}'),
                ("friends", "u", "u", 1_000, '{"id":"u","pk":"u","ttl":5}'),
            ],
        )
    store = SqliteStore(path, clock=Clock(1_800_000_100))
    try:
        assert await store.read("phone", "p", "old") is None
        assert await store.read("phone", "p", "new") is not None
        assert await store.read("phone", "p", "kept") is not None
        assert await store.read("friends", "u", "u") is not None
        await store.upsert("users", {"id": "x", "pk": "x"})  # a write: the purge runs
        assert ("phone", "p", "old") not in rows(path)
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA user_version").fetchone() == (2,)
    finally:
        await store.close()


async def test_queries_and_counts_run_inline_while_the_writer_is_busy(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    for n in range(3):
        await store.create("friends", {"id": f"f{n}", "pk": "u", "status": "accepted"})
    await store.query("friends", "u", where={"status": "accepted"})  # its index exists now
    release = threading.Event()
    store._worker.submit(release.wait)  # the writer is busy until released
    try:
        page = await asyncio.wait_for(
            store.query("friends", "u", where={"status": "accepted"}), timeout=30
        )
        assert len(page.items) == 3
        assert await asyncio.wait_for(store.count("friends", "u"), timeout=30) == 3
        found = await asyncio.wait_for(store.read_many("friends", [("u", "f1")]), timeout=30)
        assert [d["id"] for d in found] == ["f1"]
    finally:
        release.set()
        await store.close()
