"""The reaction layer's engine: durable follow-up work, and the reactor that runs reconcilers.

A request that changes a fact other documents copy (a club's members, a friendship, a meeting,
an erasure) records the work that must follow in the store's `work` container *before* the
change (`Work.before`: due after a grace period, the safety net) and marks it due *after* the
change (`Work.after`: due now). A crash between the two leaves work that finds nothing to do,
never a change nobody follows. `Work.following(...)` wraps both around a change.

A work item names a reconciler kind and a key; items coalesce per (kind, key): ten changes to a
club before the reactor looks are one reconcile. Reconcilers are level-triggered and idempotent
(`reconcile_club(club_id)` reads the truth and makes the copies agree), so running one twice,
late or after a crash is harmless; that is what lets delivery be at-least-once.

The `Reactor` claims due items (a replace under the item's etag, so two instances never run
the same item at once until the claim lapses), runs the reconciler, and deletes the item under
the etag of its claim — a change recorded while the reconciler ran has replaced the item, so
the delete misses and the item runs again. A reconciler that raises is retried with backoff;
after `MAX_ATTEMPTS` the item is parked (kept, logged, counted in `backlog()`) until an operator
or a later change re-arms it. Work is drained by the Functions Cosmos DB trigger in Azure
(`run_documents`, fed by the container's change feed) plus a timer sweep, by the devserver's
background worker (`serve`) embedded, and synchronously by tests (`drain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, cast

from switchboard import errors, telemetry
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    PreconditionFailed,
)

log = logging.getLogger("switchboard.reactions")

WORK = "work"
# Work is spread over a few partitions so that no one logical partition takes every write, and
# a sweep stays a handful of single-partition queries (no cross-partition query anywhere).
SHARDS = 4
# The safety net: work recorded before a change becomes due this long after, unless the change
# finished and marked it due at once. Long enough that a request normally marks it first.
GRACE_SECONDS = 5.0
# How long a claim holds an item against other runners (a reconciler's run is far shorter).
CLAIM_SECONDS = 60.0
MAX_ATTEMPTS = 8
BACKOFF_MAX_SECONDS = 300.0
PARKED_DUE = 2**31  # far in the future: a parked item is not due until re-armed

Reconciler = Callable[[str], Awaitable[None]]


class WorkDoc(TypedDict):
    """`work/{shard}/{digest}`: reconcile `key` with the reconciler of `kind`."""

    id: str
    pk: str
    kind: str
    key: str
    due: float  # epoch seconds
    attempts: int
    parked: bool
    claimedUntil: float
    # The failing reconciler's exception class only: messages may name users.
    lastError: str | None
    _etag: NotRequired[str]


def work_id(kind: str, key: str) -> str:
    """The item's document id: a digest, so any key (two user ids, a club id) makes a valid id."""
    return hashlib.sha256(f"{kind}\n{key}".encode()).hexdigest()[:40]


def shard_of(item_id: str) -> str:
    return f"shard-{int(item_id[:8], 16) % SHARDS}"


def _doc(item: WorkDoc) -> Doc:
    return cast(Doc, {k: v for k, v in item.items() if not k.startswith("_")})


@dataclass(frozen=True, slots=True)
class Backlog:
    """What an operator asks of the work: numbers only, never keys (they name users)."""

    pending: int
    parked: int
    oldest_age_seconds: float | None


class Work:
    """Records follow-up work durably; what services receive (`work: Work`)."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        clock: Callable[[], float] = time.time,
        grace_seconds: float = GRACE_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._grace = grace_seconds
        # Set when work becomes due, so a reactor in this process wakes at once (the devserver).
        self.wake = asyncio.Event()

    async def before(self, kind: str, key: str) -> None:
        """Record the work before the change: due after the grace period (the safety net)."""
        await self._put(kind, key, self._clock() + self._grace)

    async def after(self, kind: str, key: str) -> None:
        """Mark the work due now: the change is stored, its copies may follow at once."""
        await self._put(kind, key, self._clock())
        telemetry.REACTIONS_ENQUEUED.add(1, kind=kind)
        self.wake.set()

    async def now(self, kind: str, key: str) -> None:
        """Work due now, recorded by a reconciler fanning out to other keys."""
        await self.after(kind, key)

    @contextlib.asynccontextmanager
    async def following(self, *items: tuple[str, str]) -> AsyncIterator[None]:
        """`async with work.following(("club", club_id)): <change>`: before, change, after."""
        for kind, key in items:
            await self.before(kind, key)
        yield
        for kind, key in items:
            await self.after(kind, key)

    async def _put(self, kind: str, key: str, due: float) -> None:
        item_id = work_id(kind, key)
        item: WorkDoc = {
            "id": item_id,
            "pk": shard_of(item_id),
            "kind": kind,
            "key": key,
            "due": due,
            "attempts": 0,
            "parked": False,
            "claimedUntil": 0.0,
            "lastError": None,
        }
        # An upsert: it coalesces with a pending item and replaces a claimed one, so a runner
        # working on the old state misses its delete and the item runs again for this change.
        await self._store.upsert(WORK, _doc(item))


class Reactor:
    """Runs due work with the reconciler its kind names in `table`."""

    def __init__(
        self,
        store: DocumentStore,
        table: Mapping[str, Reconciler],
        work: Work,
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._store = store
        self._table = table
        self._work = work
        self._clock = clock
        self._max_attempts = max_attempts

    async def run_due(self, limit: int = 100, *, include_future: bool = False) -> int:
        """Run up to `limit` due items (all pending ones with `include_future`); how many ran."""
        ran = 0
        now = self._clock()
        for shard in range(SHARDS):
            if ran >= limit:
                break
            page = await self._store.query(
                WORK,
                f"shard-{shard}",
                where={"parked": False},
                order_by="due",
                limit=min(limit - ran, 100),
            )
            for raw in page.items:
                item = cast(WorkDoc, raw)
                if not include_future and item["due"] > now:
                    break  # ordered by due: the rest are later
                if await self._run(item, now):
                    ran += 1
        return ran

    async def drain(self, *, include_future: bool = True, max_rounds: int = 1000) -> int:
        """Run work until none is left (tests, shutdown); raises if it never settles.

        A reconciler that fails is retried in the next round, as the backoff would; one that
        keeps failing is parked after `max_attempts` and no longer counts as left.
        """
        total = 0
        for _ in range(max_rounds):
            ran = await self._run_round(include_future)
            total += ran
            if ran == 0:
                return total
        raise RuntimeError(f"work did not settle in {max_rounds} rounds")

    async def _run_round(self, include_future: bool) -> int:
        ran = 0
        for shard in range(SHARDS):
            continuation = None
            while True:
                page = await self._store.query(
                    WORK,
                    f"shard-{shard}",
                    where={"parked": False},
                    order_by="due",
                    limit=100,
                    continuation=continuation,
                )
                for raw in page.items:
                    item = cast(WorkDoc, raw)
                    # Draining ignores backoff and claims: nothing else runs in a test.
                    due = include_future or item["due"] <= self._clock()
                    if due and await self._run(item, self._clock(), ignore_claims=True):
                        ran += 1
                continuation = page.continuation
                if continuation is None:
                    break
        return ran

    async def run_documents(self, docs: Sequence[Mapping[str, Any]]) -> int:
        """Run the work documents the change feed delivered (the Azure trigger); how many ran.

        The feed delivers every write, so an item seen here may be not yet due (recorded before
        its change: the timer sweep or its own `after` write runs it), already claimed, or
        already done; each is re-read so that only its current state counts.
        """
        ran = 0
        now = self._clock()
        seen: set[tuple[str, str]] = set()
        for raw in docs:
            key = (str(raw.get("pk", "")), str(raw.get("id", "")))
            if key in seen or not key[0].startswith("shard-"):
                continue
            seen.add(key)
            current = await self._store.read(WORK, key[0], key[1])
            if current is None:
                continue
            item = cast(WorkDoc, current)
            if item["parked"] or item["due"] > now:
                continue
            if await self._run(item, now):
                ran += 1
        return ran

    async def backlog(self) -> Backlog:
        """Pending and parked items and the age of the oldest due item: one query per shard
        for the oldest, and counting pages (the backlog is small when all is well)."""
        pending = parked = 0
        oldest: float | None = None
        now = self._clock()
        for shard in range(SHARDS):
            continuation = None
            while True:
                page = await self._store.query(
                    WORK, f"shard-{shard}", limit=1000, continuation=continuation
                )
                for raw in page.items:
                    item = cast(WorkDoc, raw)
                    if item["parked"]:
                        parked += 1
                        continue
                    pending += 1
                    if item["due"] <= now:
                        oldest = max(oldest or 0.0, now - item["due"])
                continuation = page.continuation
                if continuation is None:
                    break
        telemetry.observe_backlog(oldest, parked)
        return Backlog(pending, parked, oldest)

    async def serve(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """The devserver's worker: run due work when woken (this process recorded some) or every
        `idle_seconds` (another process did, or a backoff ended), until `stop` is set."""
        while not stop.is_set():
            self._work.wake.clear()
            try:
                ran = await self.run_due()
            except errors.DependencyUnavailable:
                ran = 0  # the store is down: try again after the idle wait
            except Exception:
                log.exception("the reaction worker failed; it goes on")
                ran = 0
            if ran:
                continue  # more may be due
            waits = [asyncio.ensure_future(self._work.wake.wait())]
            waits.append(asyncio.ensure_future(stop.wait()))
            _, pending = await asyncio.wait(
                waits, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def _run(self, item: WorkDoc, now: float, *, ignore_claims: bool = False) -> bool:
        """Claim, run and settle one item; False when it was not ours to run."""
        if not ignore_claims and item.get("claimedUntil", 0.0) > now:
            return False
        reconcile = self._table.get(item["kind"])
        claim = cast(WorkDoc, dict(item))
        claim["claimedUntil"] = now + CLAIM_SECONDS
        claim["attempts"] = item["attempts"] + 1
        try:
            claimed = cast(WorkDoc, await self._store.replace(WORK, _doc(claim), item["_etag"]))
        except (PreconditionFailed, DocumentNotFound):
            return False  # another runner has it, or a change re-armed it: theirs to run
        if reconcile is None:
            # Work of a kind this version does not know (an older or newer deployment wrote it):
            # park it rather than lose it.
            await self._fail(claimed, "unknown kind", park=True)
            telemetry.REACTIONS_PARKED.add(1, kind="unknown")
            return True
        try:
            await reconcile(item["key"])
        except Exception as exc:
            park = claimed["attempts"] >= self._max_attempts
            if not isinstance(exc, errors.DependencyUnavailable):
                log.warning(
                    "reconciler %s failed (%s), attempt %d",
                    item["kind"],
                    type(exc).__name__,
                    claimed["attempts"],
                    exc_info=not park,
                )
            await self._fail(claimed, type(exc).__name__, park=park)
            counter = telemetry.REACTIONS_PARKED if park else telemetry.REACTIONS_RETRIED
            counter.add(1, kind=item["kind"])
            return True
        telemetry.REACTIONS_DONE.add(1, kind=item["kind"])
        with contextlib.suppress(PreconditionFailed, DocumentNotFound):
            # Missed when a change re-armed the item meanwhile: it runs again, as it should.
            await self._store.delete(WORK, claimed["pk"], claimed["id"], claimed["_etag"])
        return True

    async def _fail(self, claimed: WorkDoc, error: str, *, park: bool) -> None:
        retry = cast(WorkDoc, dict(claimed))
        retry["lastError"] = error
        retry["claimedUntil"] = 0.0
        if park:
            retry["parked"] = True
            retry["due"] = PARKED_DUE
            log.error(
                "work parked after %d attempts: kind %s (%s)",
                claimed["attempts"],
                claimed["kind"],
                error,
            )
        else:
            backoff = min(2.0 ** claimed["attempts"], BACKOFF_MAX_SECONDS)
            retry["due"] = self._clock() + backoff
        with contextlib.suppress(PreconditionFailed, DocumentNotFound, DocumentExists):
            await self._store.replace(WORK, _doc(retry), claimed["_etag"])

    async def rearm_parked(self) -> int:
        """Make every parked item due again (an operator fixed the cause); how many."""
        count = 0
        for shard in range(SHARDS):
            continuation = None
            while True:
                page = await self._store.query(
                    WORK,
                    f"shard-{shard}",
                    where={"parked": True},
                    limit=100,
                    continuation=continuation,
                )
                for raw in page.items:
                    item = cast(WorkDoc, raw)
                    await self._work.after(item["kind"], item["key"])
                    count += 1
                continuation = page.continuation
                if continuation is None:
                    break
        return count
