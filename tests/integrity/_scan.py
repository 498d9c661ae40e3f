"""Every document of a container, whatever the store: the integrity checks read whole containers,
which no request may do (the port offers single-partition queries only), so this reaches under
the port: SQLite's table, or a cross-partition query of the Cosmos container."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from switchboard.adapters.cosmos_store import CosmosStore, _port_shape
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.ports import Doc
from tests.proxies import PortSpy


def _unwrap(port: object) -> object:
    """The adapter under test wrappers (a PortSpy's `inner`, a wrapper's `_inner` or `_store`)."""
    for _ in range(10):
        if isinstance(port, PortSpy):
            port = port.inner
            continue
        inner = getattr(port, "_inner", None) or getattr(port, "_store", None)
        if inner is None or isinstance(port, (SqliteStore, CosmosStore)):
            return port
        port = inner
    return port


async def all_docs(store: object, container: str) -> list[Doc]:
    """Every document of `container` (system fields left out)."""
    real = _unwrap(store)
    if isinstance(real, SqliteStore):
        with sqlite3.connect(real._path) as conn:
            rows = conn.execute(
                "SELECT body FROM documents WHERE container = ?", (container,)
            ).fetchall()
        return [json.loads(row[0]) for row in rows]
    if isinstance(real, CosmosStore):
        proxy: Any = real._container(container)
        return [_port_shape(item) async for item in proxy.query_items("SELECT * FROM c")]
    raise TypeError(f"no way to scan {type(real).__name__}")


def live_local_threads(chat_provider: object) -> dict[str, set[str]] | None:
    """thread id -> its participants' communicationUserIds (the service identity left out) of
    every live thread of the local chat provider; None for any other provider."""
    from switchboard.adapters.chat_local import LOCAL_SERVICE_USER, LocalChatProvider

    real = _unwrap(chat_provider)
    if not isinstance(real, LocalChatProvider):
        return None
    with real._lock:
        rows = real._db.execute(
            "SELECT t.id, p.communication_user_id FROM threads t LEFT JOIN participants p "
            "ON p.thread_id = t.id WHERE t.deleted_at IS NULL"
        ).fetchall()
    threads: dict[str, set[str]] = {}
    for thread_id, member in rows:
        people = threads.setdefault(thread_id, set())
        if member and member != LOCAL_SERVICE_USER:
            people.add(member)
    return threads
