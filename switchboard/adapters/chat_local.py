"""The local chat provider: the embedded stand-in for Azure Communication Services Chat (the
`ChatProvider` port), used when neither `ACS_ENDPOINT` nor `ACS_CONNECTION_STRING` is set.

A real, persistent product for development, not a mock: threads and their participants live in
`chat-local.sqlite` under the data dir, so a restarted server knows the same threads. It keeps
the rules ACS keeps, so no code path works only locally:

- thread ids are ACS-shaped (`19:acsV1_<32 hex>@thread.v2`);
- the creator (the controller's service identity) is a participant of every thread it creates
  and counts toward the 250-participant cap; an add that would pass the cap adds nobody and
  raises `ChatThreadFull` (ACS answers such an add with 400);
- at most 200 participants per create or add call (ValueError: ACS answers 400);
- the same idempotency token returns the same thread (ACS's `repeatability-request-id`);
- adding someone already in the thread changes nothing; removing someone absent, or deleting a
  thread already gone, is not an error. Adding to a deleted thread is `ChatThreadNotFound`.

It does not carry messages: clients without ACS have no chat data plane to talk to, and the
controller never reads messages. `participants` and `exists` let tests and developers see state.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from switchboard.ports import (
    MAX_PARTICIPANTS_PER_ADD,
    MAX_THREAD_PARTICIPANTS,
    ChatParticipant,
    ChatThreadFull,
    ChatThreadNotFound,
)

DATABASE_FILE_NAME = "chat-local.sqlite"
# The creator of every local thread, as the service identity is in ACS (a fixed local id: the
# local provider needs no token to act).
LOCAL_SERVICE_USER = "8:acs:local_switchboard-controller"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    deleted_at REAL,
    idempotency_token TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS participants (
    thread_id TEXT NOT NULL,
    communication_user_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    PRIMARY KEY (thread_id, communication_user_id)
);
"""


class LocalChatProvider:
    """ACS-shaped chat threads and participants, kept in SQLite under `data_dir`.

    Each operation is a short transaction under a lock, run on the calling thread (tens of
    microseconds in WAL mode; a thread hop would cost more). Other processes on the same data
    dir are safe too (SQLite WAL + busy timeout).
    """

    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = sqlite3.connect(
            data_dir / DATABASE_FILE_NAME, timeout=10, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        self._db = db

    # -- ChatProvider ------------------------------------------------------------------------

    async def create_thread(
        self, topic: str, participants: Sequence[ChatParticipant], *, idempotency_token: str
    ) -> str:
        if not topic:
            raise ValueError("topic cannot be empty")
        _check_batch(participants)
        members = {p.communication_user_id: p for p in participants}
        members.pop(LOCAL_SERVICE_USER, None)
        if len(members) + 1 > MAX_THREAD_PARTICIPANTS:
            raise ChatThreadFull("a thread holds at most 250 participants")
        with self._lock, self._transaction() as db:
            row = db.execute(
                "SELECT id FROM threads WHERE idempotency_token = ?", (idempotency_token,)
            ).fetchone()
            if row is not None:
                return str(row[0])  # a repeated request: the thread it made the first time
            thread_id = f"19:acsV1_{uuid.uuid4().hex}@thread.v2"
            db.execute(
                "INSERT INTO threads (id, topic, created_by, created_at, idempotency_token) "
                "VALUES (?, ?, ?, ?, ?)",
                (thread_id, topic, LOCAL_SERVICE_USER, self._clock(), idempotency_token),
            )
            db.executemany(
                "INSERT INTO participants VALUES (?, ?, ?)",
                [(thread_id, LOCAL_SERVICE_USER, "Switchboard")]
                + [(thread_id, p.communication_user_id, p.display_name) for p in members.values()],
            )
        return thread_id

    async def add_participants(
        self, thread_id: str, participants: Sequence[ChatParticipant]
    ) -> None:
        _check_batch(participants)
        if not participants:
            return
        with self._lock, self._transaction() as db:
            self._check_live(db, thread_id)
            present = {
                row[0]
                for row in db.execute(
                    "SELECT communication_user_id FROM participants WHERE thread_id = ?",
                    (thread_id,),
                )
            }
            by_id = {p.communication_user_id: p for p in participants}
            new = by_id.keys() - present
            if len(present) + len(new) > MAX_THREAD_PARTICIPANTS:
                raise ChatThreadFull("a thread holds at most 250 participants")
            db.executemany(
                "INSERT INTO participants VALUES (?, ?, ?)",
                [(thread_id, acs_id, by_id[acs_id].display_name) for acs_id in sorted(new)],
            )

    async def remove_participant(self, thread_id: str, communication_user_id: str) -> None:
        with self._lock, self._transaction() as db:
            db.execute(
                "DELETE FROM participants WHERE thread_id = ? AND communication_user_id = ?",
                (thread_id, communication_user_id),
            )

    async def list_participants(self, thread_id: str) -> list[str]:
        with self._lock:
            self._check_live(self._db, thread_id)
            return sorted(
                row[0]
                for row in self._db.execute(
                    "SELECT communication_user_id FROM participants WHERE thread_id = ? "
                    "AND communication_user_id != ?",
                    (thread_id, LOCAL_SERVICE_USER),
                )
            )

    async def delete_thread(self, thread_id: str) -> None:
        with self._lock, self._transaction() as db:
            db.execute(
                "UPDATE threads SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                (self._clock(), thread_id),
            )
            db.execute("DELETE FROM participants WHERE thread_id = ?", (thread_id,))

    async def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- inspection (tests, developers) ------------------------------------------------------

    def participants(self, thread_id: str) -> set[str]:
        """The communicationUserIds in a live thread, the creator included (empty when gone)."""
        with self._lock:
            return {
                row[0]
                for row in self._db.execute(
                    "SELECT p.communication_user_id FROM participants p JOIN threads t "
                    "ON t.id = p.thread_id WHERE p.thread_id = ? AND t.deleted_at IS NULL",
                    (thread_id,),
                )
            }

    def exists(self, thread_id: str) -> bool:
        """Whether the thread exists and is not deleted."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM threads WHERE id = ? AND deleted_at IS NULL", (thread_id,)
            ).fetchone()
        return row is not None

    def thread_count(self) -> int:
        """How many live threads there are."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM threads WHERE deleted_at IS NULL")
            return int(row.fetchone()[0])

    # -- internals ---------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    @staticmethod
    def _check_live(db: sqlite3.Connection, thread_id: str) -> None:
        row = db.execute(
            "SELECT 1 FROM threads WHERE id = ? AND deleted_at IS NULL", (thread_id,)
        ).fetchone()
        if row is None:
            raise ChatThreadNotFound("the chat thread does not exist")


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): each operation is all or nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _check_batch(participants: Sequence[ChatParticipant]) -> None:
    if len(participants) > MAX_PARTICIPANTS_PER_ADD:
        raise ValueError(f"at most {MAX_PARTICIPANTS_PER_ADD} participants per call")
