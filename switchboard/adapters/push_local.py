"""The local push hub: the embedded stand-in for Azure Notification Hubs (the `PushSender` port),
used when `NOTIFICATION_HUB_CONNECTION_STRING` is not set.

A real, persistent product for development, not a mock. It keeps, in `push-local.sqlite` under
the data dir:

- the installations, as the hub would (create or overwrite, patch the push channel, delete);
- an outbox: every send, with the tags it was addressed to and the installations it reached,
  resolved as the hub resolves an OR tag expression. `GET /api/dev/push` reads it (dev only), so
  a developer sees which device a push would have woken without an Apple or Google account.

It refuses what the hub refuses (an unknown platform, more than 20 tags in one send), so no code
path works only locally. Push channels are kept (the hub keeps them too) but never shown.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from switchboard.ports import (
    MAX_TAGS_PER_SEND,
    PUSH_DATA_KEYS,
    PUSH_PLATFORMS,
    PushInstallation,
    PushInstallationNotFound,
    PushMessage,
)

DATABASE_FILE_NAME = "push-local.sqlite"
OUTBOX_LIMIT = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS installations (
    id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    push_channel TEXT NOT NULL,
    tag TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS installations_by_tag ON installations (tag);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sent_at REAL NOT NULL,
    tags TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL,
    delivered_to TEXT NOT NULL
);
-- What each kept push refers to (its tags, the users its data names), for an erase to find
-- the erased user's pushes without reading the whole outbox.
CREATE TABLE IF NOT EXISTS outbox_refs (
    seq INTEGER NOT NULL,
    ref TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_refs_by_ref ON outbox_refs (ref);
"""
# Data keys whose value is a user id (PUSH_DATA_KEYS): a push naming an erased user goes.
USER_DATA_KEYS = ("startedBy",)


class LocalPushHub:
    """Installations and an outbox in SQLite; safe for concurrent async callers and threads.

    Every operation is one or two short statements under a lock, run on the calling thread
    (tens of microseconds in WAL mode), as the local ACS issuer does.
    """

    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            data_dir / DATABASE_FILE_NAME, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)

    # -- PushSender ------------------------------------------------------------------------------

    async def put_installation(self, installation: PushInstallation) -> None:
        if installation.platform not in PUSH_PLATFORMS:
            raise ValueError(f"unknown push platform {installation.platform!r}")
        if not installation.push_channel:
            raise ValueError("an installation needs a push channel")
        with self._lock:
            self._db.execute(
                "INSERT INTO installations (id, platform, push_channel, tag, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " platform = excluded.platform, push_channel = excluded.push_channel,"
                " tag = excluded.tag, updated_at = excluded.updated_at",
                (
                    installation.installation_id,
                    installation.platform,
                    installation.push_channel,
                    installation.tag,
                    self._clock(),
                ),
            )

    async def update_push_channel(self, installation_id: str, push_channel: str) -> None:
        if not push_channel:
            raise ValueError("an installation needs a push channel")
        with self._lock:
            updated = self._db.execute(
                "UPDATE installations SET push_channel = ?, updated_at = ? WHERE id = ?",
                (push_channel, self._clock(), installation_id),
            ).rowcount
        if not updated:
            # The hub answers a PATCH of a missing installation with 404; the caller PUTs then.
            raise PushInstallationNotFound("no such installation")

    async def delete_installation(self, installation_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM installations WHERE id = ?", (installation_id,))

    async def send(self, message: PushMessage, tags: Sequence[str]) -> None:
        if isinstance(tags, str) or not 1 <= len(tags) <= MAX_TAGS_PER_SEND:
            raise ValueError(f"a send names 1 to {MAX_TAGS_PER_SEND} tags")
        unknown = set(message.data) - set(PUSH_DATA_KEYS)
        if unknown:
            raise ValueError(f"push data keys not in the templates: {sorted(unknown)}")
        wanted = list(dict.fromkeys(tags))
        marks = ",".join("?" * len(wanted))
        with self._lock, self._transaction():  # the push and its refs: one commit
            rows = self._db.execute(
                f"SELECT id, platform FROM installations WHERE tag IN ({marks}) ORDER BY id",  # noqa: S608 (placeholders only)
                wanted,
            ).fetchall()
            delivered = [{"installationId": row[0], "platform": row[1]} for row in rows]
            seq = self._db.execute(
                "INSERT INTO outbox (sent_at, tags, title, body, data, delivered_to)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self._clock(),
                    json.dumps(wanted),
                    message.title,
                    message.body,
                    json.dumps(dict(message.data)),
                    json.dumps(delivered),
                ),
            ).lastrowid
            users = [f"user:{message.data[k]}" for k in USER_DATA_KEYS if message.data.get(k)]
            self._db.executemany(
                "INSERT INTO outbox_refs (seq, ref) VALUES (?, ?)",
                [(seq, ref) for ref in [*wanted, *users]],
            )

    async def forget(self, *, tag: str, user_id: str, installation_ids: Sequence[str]) -> int:
        """An erased user's part of the outbox goes (`PushOutbox`), found by its refs."""
        gone_devices = set(installation_ids)
        changed = 0
        with self._lock, self._transaction():
            refs = self._db.execute(
                "SELECT DISTINCT seq, ref FROM outbox_refs WHERE ref IN (?, ?)",
                (tag, f"user:{user_id}"),
            ).fetchall()
            named = {seq for seq, ref in refs if ref != tag}
            for seq in sorted({seq for seq, _ in refs}):
                row = self._db.execute(
                    "SELECT tags, delivered_to FROM outbox WHERE seq = ?", (seq,)
                ).fetchone()
                tags = [t for t in json.loads(row[0]) if t != tag] if row else []
                if row is None or seq in named or not tags:
                    self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                    self._db.execute("DELETE FROM outbox_refs WHERE seq = ?", (seq,))
                else:
                    delivered = [
                        d for d in json.loads(row[1]) if d["installationId"] not in gone_devices
                    ]
                    self._db.execute(
                        "UPDATE outbox SET tags = ?, delivered_to = ? WHERE seq = ?",
                        (json.dumps(tags), json.dumps(delivered), seq),
                    )
                    self._db.execute(
                        "DELETE FROM outbox_refs WHERE seq = ? AND ref = ?", (seq, tag)
                    )
                changed += 1
        return changed

    async def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- dev outbox --------------------------------------------------------------------------------

    async def sent(self, limit: int = OUTBOX_LIMIT) -> list[dict[str, Any]]:
        """The latest sends, newest first: what was said, to which tags, which devices got it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, sent_at, tags, title, body, data, delivered_to FROM outbox"
                " ORDER BY seq DESC LIMIT ?",
                (max(1, min(limit, OUTBOX_LIMIT)),),
            ).fetchall()
        return [
            {
                "seq": seq,
                "sentAt": sent_at,
                "tags": json.loads(tags),
                "title": title,
                "body": body,
                "data": json.loads(data),
                "deliveredTo": json.loads(delivered),
            }
            for seq, sent_at, tags, title, body, data, delivered in rows
        ]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), under the caller's lock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def installation(self, installation_id: str) -> dict[str, str] | None:
        """One installation as the hub keeps it (tests and developers)."""
        with self._lock:
            row = self._db.execute(
                "SELECT platform, push_channel, tag FROM installations WHERE id = ?",
                (installation_id,),
            ).fetchone()
        if row is None:
            return None
        return {"platform": row[0], "pushChannel": row[1], "tag": row[2]}
