"""Health: is every dependency a request needs reachable right now?"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.errors import DependencyUnavailable
from switchboard.ports import DocumentStore


@dataclass(frozen=True, slots=True)
class HealthReport:
    ok: bool
    retry_after: int | None = None


class HealthService:
    """Checks the store; ACS is not probed (each probe would cost a billable identity call)."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    async def check(self) -> HealthReport:
        try:
            await self._store.ping()
        except DependencyUnavailable as exc:
            return HealthReport(ok=False, retry_after=exc.retry_after)
        return HealthReport(ok=True)
