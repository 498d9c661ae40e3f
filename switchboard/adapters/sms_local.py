"""The local SMS outbox: the embedded stand-in for ACS SMS (the `SmsSender` port), used when
`SMS_FROM` is not set outside Azure.

A real, persistent product for development, not a mock: every message "sent" is kept in
`sms-outbox.sqlite` under the data dir (recipient, text, tag, status, time), so a restarted server
still has it, and `GET /api/dev/outbox` (dev auth only) lists it: a developer reads a
verification code there and verifies without a phone. Message ids look like ACS ones
(`Outgoing_<time><uuid>`); every message is accepted, as ACS accepts a valid number.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from switchboard.ports import SmsSendResult

DATABASE_FILE_NAME = "sms-outbox.sqlite"
LOCAL_SENDER = "+10000000000"  # what `from` shows when SMS_FROM is not set (the outbox has none)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    message TEXT NOT NULL,
    tag TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message the outbox kept."""

    message_id: str
    sender: str
    to: str
    message: str
    tag: str
    status: str
    created_at: datetime


class LocalSmsOutbox:
    """SmsSender that keeps every message in a SQLite file instead of sending it."""

    def __init__(self, data_dir: Path, sender: str = LOCAL_SENDER) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.sender = sender
        self._path = data_dir / DATABASE_FILE_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    async def send(self, to: str, message: str, *, tag: str) -> SmsSendResult:
        now = datetime.now(UTC)
        message_id = f"Outgoing_{now:%Y%m%d%H%M%S}{uuid.uuid4()}"
        await asyncio.to_thread(self._insert, message_id, to, message, tag, now)
        return SmsSendResult(message_id=message_id, accepted=True, status_code=202)

    def _insert(self, message_id: str, to: str, message: str, tag: str, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (message_id, sender, recipient, message, tag, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, 'accepted', ?)",
                (message_id, self.sender, to, message, tag, now.isoformat()),
            )

    async def messages(self, limit: int = 100) -> list[OutboxMessage]:
        """The newest `limit` messages, newest first."""
        return await asyncio.to_thread(self._select, limit)

    def _select(self, limit: int) -> list[OutboxMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT message_id, sender, recipient, message, tag, status, created_at "
                "FROM outbox ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            OutboxMessage(
                message_id=row[0],
                sender=row[1],
                to=row[2],
                message=row[3],
                tag=row[4],
                status=row[5],
                created_at=datetime.fromisoformat(row[6]),
            )
            for row in rows
        ]

    async def close(self) -> None:
        with self._lock:
            self._db.close()
