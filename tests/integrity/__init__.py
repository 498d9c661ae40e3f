"""The integrity check of issue 19: read every container of a store (and the chat provider) and
list what breaks an invariant of the reaction layer. Tests run it after draining the work.

`check_all(store, chat_provider)` runs the `check(store, chat_provider) -> list[str]` of every
module of this package, found at run time: a capability adds its invariants as a module here
(`clubs.py`, `friends.py`, `meetings.py`, ...) and nobody edits this file for it. A check returns
one line per violation, naming what is wrong (ids, counts), and [] when the store is sound.
`check_all(..., erased=[...])` also checks that nothing names those erased users but what their
erasure needs (`erasure.check_erased`).

`documents(store, container)` reads a whole container across partitions: a test tool only (the
app never does this), from the SQLite file, or with one cross-partition query on Cosmos DB.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sqlite3
from collections.abc import Awaitable, Callable, Collection
from typing import Any, cast

from switchboard.ports import ChatProvider, Doc, DocumentStore

Check = Callable[[DocumentStore, ChatProvider | None], Awaitable[list[str]]]


async def documents(store: DocumentStore, container: str) -> list[Doc]:
    """Every document of `container`, without system fields, across partitions."""
    inner: Any = getattr(store, "inner", store)  # a PortSpy's port
    path = getattr(inner, "_path", None)
    if path is not None:  # SqliteStore: its file, read-only, beside the store's own connection
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT body FROM documents WHERE container = ?", (container,))
            return [json.loads(row[0]) for row in rows]
    proxy = inner._container(container)  # CosmosStore: its container client
    return [
        {k: v for k, v in doc.items() if not k.startswith("_")}
        async for doc in proxy.query_items("SELECT * FROM c")
    ]


def checks() -> dict[str, Check]:
    """Every module of this package that defines `check`, by module name."""
    found: dict[str, Check] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        check = getattr(module, "check", None)
        if check is not None and inspect.iscoroutinefunction(check):
            found[module_info.name] = cast(Check, check)
    return found


async def check_all(
    store: DocumentStore, chat_provider: ChatProvider | None, *, erased: Collection[str] = ()
) -> list[str]:
    """Every violation every module finds, each line prefixed with the module's name."""
    from tests.integrity.erasure import check_erased

    found: list[str] = []
    for name, check in checks().items():
        found += [f"{name}: {line}" for line in await check(store, chat_provider)]
    if erased:
        found += [f"erasure: {line}" for line in await check_erased(store, chat_provider, erased)]
    return found
