"""SqliteStore's own behaviour beyond the shared contract: a real file that outlives the process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.ports import DocumentExists


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
