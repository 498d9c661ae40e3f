"""The local rooms provider: the embedded stand-in for ACS Rooms (the `RoomsProvider` port), used
when neither `ACS_ENDPOINT` nor `ACS_CONNECTION_STRING` is set.

A real, persistent product for development, not a mock: rooms and their rosters live in
`rooms-local.sqlite` under the data dir, so a restarted server knows the same rooms. It keeps the
rules ACS keeps, so no code path works only locally:

- room ids are ACS-shaped (17 decimal digits, as in the REST reference's examples);
- a room has a validity window, at most 180 days long (ValueError beyond, as ACS answers 400);
- only identities on the roster, inside the window, are admitted (`admits`): an outsider who
  knows the room id is refused, as ACS refuses them;
- adding someone already on the roster updates their role; removing someone absent, or
  deleting a room already gone, is not an error; adding to a deleted room is `RoomNotFound`.

It carries no media: `admits` and `participants` let tests and developers see what ACS would
decide when a client joins.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from switchboard.ports import ROOM_VALIDITY_MAX, RoomNotFound, RoomParticipant, RoomRole

DATABASE_FILE_NAME = "rooms-local.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY,
    valid_from REAL NOT NULL,
    valid_until REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS participants (
    room_id TEXT NOT NULL,
    communication_user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (room_id, communication_user_id)
);
"""


def _room_id() -> str:
    # ACS room ids are 17-digit decimal numbers ("99117812428622880").
    return str(10**16 + secrets.randbelow(9 * 10**16))


def check_window(valid_from: datetime, valid_until: datetime) -> None:
    """ACS's rule for a room's validity window (it answers 400 otherwise)."""
    if valid_until <= valid_from:
        raise ValueError("a room's validUntil must be after its validFrom")
    if valid_until - valid_from > ROOM_VALIDITY_MAX:
        raise ValueError("a room may be valid for at most 180 days")


class LocalRoomsProvider:
    """ACS-shaped rooms and rosters, kept in SQLite under `data_dir`.

    Each operation is a short transaction under a lock, on the calling thread (tens of
    microseconds in WAL mode). Other processes on the same data dir are safe (WAL + busy timeout).
    """

    def __init__(
        self, data_dir: Path, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = sqlite3.connect(
            data_dir / DATABASE_FILE_NAME, timeout=10, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        self._db = db

    # -- RoomsProvider -------------------------------------------------------------------------

    async def create_room(
        self,
        valid_from: datetime,
        valid_until: datetime,
        participants: Sequence[RoomParticipant],
    ) -> str:
        check_window(valid_from, valid_until)
        room_id = _room_id()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO rooms (id, valid_from, valid_until) VALUES (?, ?, ?)",
                    (room_id, valid_from.timestamp(), valid_until.timestamp()),
                )
                self._put(room_id, participants)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return room_id

    async def add_or_update_participants(
        self, room_id: str, participants: Sequence[RoomParticipant]
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._exists(room_id):
                    raise RoomNotFound(room_id)
                self._put(room_id, participants)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    async def remove_participants(
        self, room_id: str, communication_user_ids: Sequence[str]
    ) -> None:
        with self._lock:
            self._db.executemany(
                "DELETE FROM participants WHERE room_id = ? AND communication_user_id = ?",
                [(room_id, user) for user in communication_user_ids],
            )

    async def delete_room(self, room_id: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE rooms SET deleted = 1 WHERE id = ?", (room_id,))
            self._db.execute("DELETE FROM participants WHERE room_id = ?", (room_id,))
            self._db.execute("COMMIT")

    async def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- what ACS would decide -----------------------------------------------------------------

    def admits(self, room_id: str, communication_user_id: str) -> RoomRole | None:
        """The role `communication_user_id` joins `room_id` with now, or None when ACS would
        refuse them (not on the roster, outside the window, or no such room)."""
        now = self._clock().timestamp()
        with self._lock:
            row = self._db.execute(
                "SELECT p.role FROM rooms r JOIN participants p ON p.room_id = r.id "
                "WHERE r.id = ? AND p.communication_user_id = ? AND r.deleted = 0 "
                "AND r.valid_from <= ? AND ? < r.valid_until",
                (room_id, communication_user_id, now, now),
            ).fetchone()
        return None if row is None else row[0]

    def participants(self, room_id: str) -> dict[str, RoomRole]:
        """The roster: identity → role (empty for a missing room)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT communication_user_id, role FROM participants WHERE room_id = ?",
                (room_id,),
            ).fetchall()
        return dict(rows)

    def exists(self, room_id: str) -> bool:
        with self._lock:
            return self._exists(room_id)

    # -- internals -----------------------------------------------------------------------------

    def _exists(self, room_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM rooms WHERE id = ? AND deleted = 0", (room_id,)
        ).fetchone()
        return row is not None

    def _put(self, room_id: str, participants: Sequence[RoomParticipant]) -> None:
        self._db.executemany(
            "INSERT INTO participants (room_id, communication_user_id, role) VALUES (?, ?, ?) "
            "ON CONFLICT (room_id, communication_user_id) DO UPDATE SET role = excluded.role",
            [(room_id, p.communication_user_id, p.role) for p in participants],
        )
