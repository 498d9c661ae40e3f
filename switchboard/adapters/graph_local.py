"""The local meeting provider: the embedded stand-in for Microsoft Graph's online meetings (the
`MeetingProvider` port), used when `MEETINGS_ORGANIZER_ID` is not set and the app runs embedded.

It records meetings in `meetings-local.sqlite` under the data dir, so they survive a restart, and
honours `externalId` as Graph's createOrGet does (the same id gives the same meeting back). Its
join links are `https://local.invalid/meetings/<id>`: the reserved `.invalid` domain makes them
plainly not Teams links, and no client can mistake one for a real meeting. A local meeting has no
Teams chat thread and no Teams meeting ID, so those stay null.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from switchboard.ports import OnlineMeeting

DATABASE_FILE_NAME = "meetings-local.sqlite"
JOIN_URL_BASE = "https://local.invalid/meetings/"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meetings (
    id TEXT PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    start TEXT NOT NULL,
    "end" TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


class LocalMeetingProvider:
    """Meetings recorded in SQLite under the data dir; `provider: "local"` in the API."""

    name = "local"

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / DATABASE_FILE_NAME
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = 5000")
            connection.execute(_SCHEMA)
            self._connection = connection
        return self._connection

    async def create_meeting(
        self, *, external_id: str, subject: str, start: datetime, end: datetime
    ) -> OnlineMeeting:
        with self._lock:
            db = self._connect()
            db.execute(
                "INSERT OR IGNORE INTO meetings VALUES (?, ?, ?, ?, ?, ?)",
                (
                    uuid.uuid4().hex,
                    external_id,
                    subject,
                    start.isoformat(),
                    end.isoformat(),
                    datetime.now(UTC).isoformat(),
                ),
            )
            (meeting_id,) = db.execute(
                "SELECT id FROM meetings WHERE external_id = ?", (external_id,)
            ).fetchone()
        return _meeting(meeting_id)

    async def find_by_join_meeting_id(self, join_meeting_id: str) -> OnlineMeeting | None:
        return None  # local meetings have no Teams meeting ID

    async def delete_meeting(self, provider_meeting_id: str) -> None:
        with self._lock:
            self._connect().execute("DELETE FROM meetings WHERE id = ?", (provider_meeting_id,))

    def exists(self, provider_meeting_id: str) -> bool:
        """Whether the meeting is recorded (tests and developers check cancellation with it)."""
        with self._lock:
            row = (
                self._connect()
                .execute("SELECT 1 FROM meetings WHERE id = ?", (provider_meeting_id,))
                .fetchone()
            )
        return row is not None

    async def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _meeting(meeting_id: str) -> OnlineMeeting:
    return OnlineMeeting(
        provider_meeting_id=meeting_id,
        join_url=JOIN_URL_BASE + meeting_id,
        thread_id=None,
        join_meeting_id=None,
        passcode=None,
    )
