"""Erase is final (issue 19 §5): once an erasure's work is drained, nothing names the user.

`check_erased(store, chat_provider, user_ids)` scans every container of `ports.CONTAINERS` —
partition keys, ids and bodies — for each erased user's id (and any other needle given, such as
the ACS identity they had), and, with the local chat provider, every live thread's participants
for those needles. The only documents allowed to name them are what the erasure itself needs
while it runs: the erasure record and the `erasure` work item.

`check` (run by `check_all` for every scenario) holds without knowing who was erased: every
erasure record is followed by its work item, so no erasure can stop half-way unnoticed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from typing import Any

from switchboard.ports import CONTAINERS, ChatProvider, Doc, DocumentStore
from switchboard.services.identity import ERASURE, ERASURE_DOC_ID, erasure_pk
from switchboard.services.reactions import WORK
from switchboard.services.token_budget import record_id
from tests.integrity import documents


def _needed_by_the_erasure(container: str, doc: Doc, user_id: str) -> bool:
    if container == "users":
        # The erasure's own record, and the token budget's record, which erase must not reset
        # (issue 21): timestamps only, gone by TTL one budget window after its last use.
        return (doc["pk"], doc["id"]) in {
            (erasure_pk(user_id), ERASURE_DOC_ID),
            (user_id, record_id(user_id)),
        }
    if container == WORK:
        return (doc.get("kind"), doc.get("key")) == (ERASURE, user_id)
    return False


def _text(doc: Doc) -> str:
    return "\n".join((str(doc.get("pk")), str(doc.get("id")), json.dumps(doc, ensure_ascii=False)))


async def check(store: DocumentStore, chat_provider: ChatProvider | None) -> list[str]:
    work = {(d.get("kind"), d.get("key")) for d in await documents(store, WORK) if "kind" in d}
    found = []
    for doc in await documents(store, "users"):
        pk = str(doc["pk"])
        if doc["id"] == ERASURE_DOC_ID and pk.startswith("erasure:"):
            user_id = pk.removeprefix("erasure:")
            if (ERASURE, user_id) not in work:
                found.append(f"the erasure of {user_id} has a record but no work to finish it")
    return found


async def check_erased(
    store: DocumentStore,
    chat_provider: ChatProvider | None,
    user_ids: Collection[str],
    *,
    also: Collection[str] = (),
) -> list[str]:
    """One line per document (or chat seat) that still names an erased user."""
    found: list[str] = []
    for container in CONTAINERS:
        for doc in await documents(store, container):
            text = _text(doc)
            for user_id in user_ids:
                if user_id in text and not _needed_by_the_erasure(container, doc, user_id):
                    found.append(f"{container} {doc['pk']!r}/{doc['id']!r} names {user_id}")
            for needle in also:
                if needle in text:
                    found.append(f"{container} {doc['pk']!r}/{doc['id']!r} holds {needle}")
    found += _seated(chat_provider, [*user_ids, *also])
    return found


def _seated(chat_provider: ChatProvider | None, needles: Collection[str]) -> list[str]:
    """Live chat seats of the local provider naming a needle (ACS ids); other providers are not
    enumerable from here and are checked by each capability's own module."""
    inner: Any = getattr(chat_provider, "inner", chat_provider)
    db = getattr(inner, "_db", None)
    if not isinstance(db, sqlite3.Connection) or not needles:
        return []
    with inner._lock:
        rows = db.execute(
            "SELECT p.thread_id, p.communication_user_id FROM participants p JOIN threads t "
            "ON t.id = p.thread_id WHERE t.deleted_at IS NULL"
        ).fetchall()
    return [
        f"chat thread {thread} still seats {needle}"
        for thread, seat in rows
        for needle in needles
        if needle == seat
    ]
