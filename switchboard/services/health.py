"""Health and the operator's view of the reaction layer: is the app usable, how far behind is the
follow-up work, and what got parked?

`check` answers "unavailable" only for what makes the app unusable (the store unreachable); the
reaction backlog is reported beside it as numbers (pending, parked, the age of the oldest due
item), never as a failure: requests still work while copies lag, and an operator (issue 25's
alerts) decides what lag is too much. Keys of work items name users, so they never appear in
health; the dev route lists parked items with their keys in dev mode only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from switchboard.errors import DependencyUnavailable
from switchboard.ports import DocumentStore
from switchboard.services.reactions import SHARDS, WORK, Backlog, WorkDoc


@dataclass(frozen=True, slots=True)
class HealthReport:
    ok: bool
    retry_after: int | None = None
    # None when the store is down (unknown), else the reaction layer's numbers.
    backlog: Backlog | None = None


@dataclass(frozen=True, slots=True)
class ParkedWork:
    """A work item that kept failing: its kind, key, attempts and the last error's class."""

    kind: str
    key: str
    attempts: int
    last_error: str | None


class HealthService:
    """Checks the store, then reads the reaction backlog; ACS is not probed (each probe would
    cost a billable identity call)."""

    def __init__(
        self,
        store: DocumentStore,
        backlog: Callable[[], Awaitable[Backlog]] | None = None,
    ) -> None:
        self._store = store
        self._backlog = backlog

    async def check(self) -> HealthReport:
        try:
            await self._store.ping()
        except DependencyUnavailable as exc:
            return HealthReport(ok=False, retry_after=exc.retry_after)
        backlog: Backlog | None = None
        if self._backlog is not None:
            try:
                backlog = await self._backlog()
            except DependencyUnavailable:
                backlog = None  # the store answered the ping: usable; the numbers come next time
        return HealthReport(ok=True, backlog=backlog)

    async def parked_work(self, limit: int = 100) -> list[ParkedWork]:
        """Up to `limit` parked items, shard by shard (one query each): dev mode's view."""
        found: list[ParkedWork] = []
        for shard in range(SHARDS):
            if len(found) >= limit:
                break
            page = await self._store.query(
                WORK, f"shard-{shard}", where={"parked": True}, limit=min(limit - len(found), 100)
            )
            for raw in page.items:
                item = cast(WorkDoc, raw)
                found.append(
                    ParkedWork(item["kind"], item["key"], item["attempts"], item["lastError"])
                )
        return found
