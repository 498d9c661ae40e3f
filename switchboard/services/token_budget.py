"""The per-user token budget (TOKEN_BUDGET): how many ACS tokens one user may be issued in a window.

ACS allows about 1,000 token issues per 30 seconds per resource, shared by every user; without a
budget one signed-in user looping `POST /api/token` spends everyone's allowance. So every issue
(`/api/token` and the Teams exchange `/api/token/teams`) is charged to the caller first, and a
caller past their budget gets 429 `token_rate_limited` with the exact wait; other users are not
affected.

The form is `<count>/<window>`, the window in seconds, minutes or hours: `30/10m` (the default) is
30 issues per user in any 10 minutes — a burst of 30, then one every 20 seconds. It is kept as a
GCRA ("generic cell rate algorithm", the token bucket written as one timestamp): the record holds
`tat`, the time at which the user's bucket is full again; an issue moves it on by window/count,
and is refused when that would put it more than a window ahead of now. One number, so no boundary
burst of a fixed window, and the wait to tell the client is exact.

Storage: one record per user, `users/tokens:<userId>` in the user's own partition (the id starts
with `tokens:`, so it can never be a profile's id, which is the user id itself). It holds `tat`
and the audit of the last issue (when, which kind; never the token), and a `ttl`: once `tat` has
passed the record says nothing a fresh one would not, so the store may drop it. Charging is one
conditional write (create, or replace under the etag last seen): concurrent requests of one user
on any number of instances each win a write or re-read, so the budget holds across instances,
without a query. Each process remembers the record it last wrote or read for a user (bounded),
so a user's later requests skip the read: the conditional write is the check, and a record
another instance changed meanwhile fails it and is read again. Steady state, the token route
costs its profile read and this one write.
Revoke and erase leave the record alone, so neither resets the budget; after an erase it lingers
for at most one window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NotRequired, TypedDict, cast

from switchboard import errors, telemetry
from switchboard.logs import safe
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    PreconditionFailed,
)

log = logging.getLogger("switchboard.identity")

USERS = "users"
RECORD_PREFIX = "tokens:"
# A lost race re-reads and retries; two in a row means another request of the same user has
# just written, and the third read sees it.
_ATTEMPTS = 4
_REMEMBERED_USERS = 10_000  # records kept in memory per process (a few hundred bytes each)
_UNITS = {"s": 1, "m": 60, "h": 3600}
_FORM = re.compile(r"\s*([0-9]{1,6})\s*/\s*([0-9]{0,5})\s*([smh])\s*")

TokenKind = Literal["acs", "teams"]


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """`count` issues per user in any `window_seconds`."""

    count: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> TokenBudget:
        """`30/10m`, `100/1h`, `5/30s` (a bare unit means one of it: `60/m`); ValueError else."""
        match = _FORM.fullmatch(text)
        if match is None:
            raise ValueError(
                "must be <count>/<window>, the window in s, m or h (e.g. 30/10m: 30 tokens per "
                "user in any 10 minutes)"
            )
        count, amount, unit = int(match[1]), int(match[2] or 1), match[3]
        window = amount * _UNITS[unit]
        if count < 1 or not 1 <= window <= 24 * 3600:
            raise ValueError("needs a count of at least 1 and a window of 1 s to 24 h")
        return cls(count, window)

    @property
    def interval(self) -> float:
        """Seconds one issue adds to the bucket (a steady rate of one per interval)."""
        return self.window_seconds / self.count

    def __str__(self) -> str:
        return f"{self.count}/{self.window_seconds}s"


DEFAULT_BUDGET = TokenBudget(30, 600)
"""TOKEN_BUDGET's default, `30/10m`: far above what a real client asks for (one token an hour,
a few more on reconnects and new devices), far below what would spend a resource's allowance."""


class TokenRecordDoc(TypedDict):
    """`users/tokens:<userId>`: the user's token budget and the audit of their last issue."""

    id: str
    pk: str
    # Epoch seconds at which the user's bucket is full again (GCRA's theoretical arrival time).
    tat: float
    lastIssuedAt: str
    lastKind: TokenKind
    ttl: int
    _etag: NotRequired[str]


def record_id(user_id: str) -> str:
    return RECORD_PREFIX + user_id


class TokenLedger:
    """Charges token issues to users against a `TokenBudget`, in the store (see the module)."""

    def __init__(
        self,
        store: DocumentStore,
        budget: TokenBudget,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self.budget = budget
        self._clock = clock
        # Concurrent requests of one user in this process charge one after another, so they do
        # not race each other's writes (each would re-read and retry); other instances still
        # race, and the conditional write settles that. Gone with the last waiter.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # The record each user's last charge here wrote or read, with its etag (see the module).
        self._recent: OrderedDict[str, Doc | None] = OrderedDict()

    async def read(self, user_id: str) -> Doc | None:
        """The user's record to hand to `charge`: as this process last saw it, else one point
        read; None if they have none."""
        if user_id in self._recent:
            self._recent.move_to_end(user_id)
            return self._recent[user_id]
        return await self._read_store(user_id)

    async def _read_store(self, user_id: str) -> Doc | None:
        record = await self._store.read(USERS, user_id, record_id(user_id))
        self._remember(user_id, record)
        return record

    def _remember(self, user_id: str, record: Doc | None) -> None:
        self._recent[user_id] = record
        self._recent.move_to_end(user_id)
        while len(self._recent) > _REMEMBERED_USERS:
            self._recent.popitem(last=False)

    async def charge(self, user_id: str, kind: TokenKind, record: Doc | None) -> None:
        """Spend one issue of the user's budget, or raise `TokenRateLimited` with the wait.

        `record` is what `read` returned: the first attempt writes at once (one conditional
        write); a lost race re-reads. Spent before ACS is called: a request that then fails
        (ACS down) still counts, so that retrying a failing call cannot exceed the budget either.
        """
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        async with lock:
            await self._charge(user_id, kind, record)

    async def _charge(self, user_id: str, kind: TokenKind, record: Doc | None) -> None:
        for attempt in range(_ATTEMPTS):
            if attempt:
                record = await self._read_store(user_id)
            now = self._clock()
            updated = self._spent(user_id, kind, record, now)
            try:
                if record is None:
                    written = await self._store.create(USERS, cast(Doc, updated))
                else:
                    written = await self._store.replace(USERS, cast(Doc, updated), record["_etag"])
            except (DocumentExists, PreconditionFailed, DocumentNotFound):
                # Another instance (or an expiry) changed it since we saw it: read, charge again.
                continue
            self._remember(user_id, written)
            return
        raise errors.DependencyUnavailable("store", retry_after=1)

    def _spent(
        self, user_id: str, kind: TokenKind, record: Doc | None, now: datetime
    ) -> TokenRecordDoc:
        budget = self.budget
        now_s = now.timestamp()
        stored = record.get("tat") if record else None
        tat = max(float(stored), now_s) if isinstance(stored, int | float) else now_s
        ahead = tat - now_s
        # A bucket of `count` issues: refused when one more would put tat beyond a window ahead.
        if ahead + budget.interval > budget.window_seconds + 1e-6:
            wait = max(1, math.ceil(ahead + budget.interval - budget.window_seconds))
            log.info(
                "token budget used up: user=%s kind=%s retry_after=%ds", safe(user_id), kind, wait
            )
            telemetry.TOKENS_REFUSED.add(1, reason="budget")
            raise errors.TokenRateLimited(
                f"You have been issued {budget.count} tokens in the last "
                f"{_duration(budget.window_seconds)}; try again in {wait} s.",
                retry_after=wait,
            )
        new_tat = tat + budget.interval
        return {
            "id": record_id(user_id),
            "pk": user_id,
            "tat": round(new_tat, 3),
            "lastIssuedAt": now.isoformat(),
            "lastKind": kind,
            # Past tat the record is as good as absent: the store may drop it then.
            "ttl": math.ceil(new_tat - now_s) + 60,
        }


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"
