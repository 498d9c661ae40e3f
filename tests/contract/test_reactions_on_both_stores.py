"""The reaction layer's engine on both stores: work recorded before a change, marked due after it,
coalesced per key, claimed by one runner, retried with backoff, parked, and re-run when a change
lands while its reconciler runs; and `modify`, the one read-modify-write."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from switchboard import errors
from switchboard.ports import Doc, DocumentStore
from switchboard.services.documents import KEEP, modify
from switchboard.services.reactions import (
    SHARDS,
    WORK,
    Reactor,
    Work,
    WorkDoc,
    shard_of,
    work_id,
)
from tests.proxies import spy, spy_of


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _items(store: DocumentStore) -> list[WorkDoc]:
    found: list[WorkDoc] = []
    for shard in range(SHARDS):
        page = await store.query(WORK, f"shard-{shard}", limit=1000)
        found.extend(page.items)  # type: ignore[arg-type]
    return found


async def test_work_before_a_change_waits_the_grace_and_after_makes_it_due(
    store: DocumentStore,
) -> None:
    clock = Clock()
    work = Work(store, clock=clock)
    seen: list[str] = []

    async def reconcile(key: str) -> None:
        seen.append(key)

    reactor = Reactor(store, {"club": reconcile}, work, clock=clock)
    await work.before("club", "c1")
    assert await reactor.run_due() == 0  # recorded before its change: not due yet
    clock.now += 6  # the change never marked it (a crash): the safety net runs it
    assert await reactor.run_due() == 1
    assert seen == ["c1"]
    assert await _items(store) == []

    async with work.following(("club", "c2"), ("club", "c3")):
        assert await reactor.run_due() == 0
    assert await reactor.run_due() == 2
    assert sorted(seen) == ["c1", "c2", "c3"]


async def test_a_change_that_fails_leaves_its_safety_net(store: DocumentStore) -> None:
    clock = Clock()
    work = Work(store, clock=clock)
    with pytest.raises(RuntimeError):
        async with work.following(("club", "c1")):
            raise RuntimeError("the change failed")
    [item] = await _items(store)
    assert item["due"] == clock.now + 5


async def test_items_coalesce_per_kind_and_key(store: DocumentStore) -> None:
    work = Work(store)
    for _ in range(3):
        await work.after("pair", "a\nb")
    await work.after("club", "a\nb")
    items = await _items(store)
    assert len(items) == 2
    assert {i["id"] for i in items} == {work_id("pair", "a\nb"), work_id("club", "a\nb")}
    assert all(i["pk"] == shard_of(i["id"]) for i in items)


async def test_failures_back_off_then_park_and_rearm(store: DocumentStore) -> None:
    clock = Clock()
    work = Work(store, clock=clock)
    calls = Counter[str]()

    async def flaky(key: str) -> None:
        calls[key] += 1
        raise errors.DependencyUnavailable("chat", retry_after=1)

    reactor = Reactor(store, {"club": flaky}, work, clock=clock, max_attempts=3)
    await work.after("club", "c1")
    assert await reactor.run_due() == 1
    [item] = await _items(store)
    assert item["attempts"] == 1
    assert item["due"] == clock.now + 2  # backoff
    assert item["lastError"] == "DependencyUnavailable"
    assert await reactor.run_due() == 0
    clock.now += 2
    await reactor.run_due()
    clock.now += 4
    await reactor.run_due()
    [item] = await _items(store)
    assert item["parked"] is True
    backlog = await reactor.backlog()
    assert (backlog.pending, backlog.parked) == (0, 1)
    clock.now += 10_000
    assert await reactor.run_due() == 0  # parked stays parked
    assert calls["c1"] == 3

    assert await reactor.rearm_parked() == 1
    assert (await reactor.backlog()).parked == 0
    assert await reactor.run_due() == 1
    assert calls["c1"] == 4


async def test_drain_runs_everything_including_fan_out(store: DocumentStore) -> None:
    work = Work(store)
    done: list[str] = []

    async def erasure(key: str) -> None:
        for n in range(5):
            await work.now("pair", f"{key}\n{n}")

    async def pair(key: str) -> None:
        done.append(key)

    reactor = Reactor(store, {"erasure": erasure, "pair": pair}, work)
    await work.before("erasure", "u1")
    assert await reactor.drain() == 6
    assert sorted(done) == [f"u1\n{n}" for n in range(5)]
    assert await _items(store) == []
    backlog = await reactor.backlog()
    assert (backlog.pending, backlog.parked, backlog.oldest_age_seconds) == (0, 0, None)


async def test_a_change_recorded_while_the_reconciler_runs_runs_it_again(
    store: DocumentStore,
) -> None:
    work = Work(store)
    runs: list[int] = []

    async def reconcile(key: str) -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            await work.after("club", key)  # another request changed the club meanwhile

    reactor = Reactor(store, {"club": reconcile}, work)
    await work.after("club", "c1")
    await reactor.drain()
    assert runs == [0, 1]


async def test_one_runner_claims_an_item(store: DocumentStore) -> None:
    work = Work(store)
    started = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def slow(key: str) -> None:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()

    first = Reactor(store, {"club": slow}, work)
    second = Reactor(store, {"club": slow}, work)
    await work.after("club", "c1")
    running = asyncio.create_task(first.run_due())
    await started.wait()
    assert await second.run_due() == 0  # claimed by the first
    release.set()
    assert await running == 1
    assert runs == 1


async def test_change_feed_documents_run_only_when_due(store: DocumentStore) -> None:
    clock = Clock()
    work = Work(store, clock=clock)
    seen: list[str] = []

    async def reconcile(key: str) -> None:
        seen.append(key)

    reactor = Reactor(store, {"club": reconcile}, work, clock=clock)
    await work.before("club", "early")
    await work.after("club", "due")
    feed = await _items(store)
    assert await reactor.run_documents([*feed, *feed, {"id": "x", "pk": "users"}]) == 1
    assert seen == ["due"]
    assert await reactor.run_documents(feed) == 0  # done already: read again, gone


async def test_unknown_kinds_are_parked_not_lost(store: DocumentStore) -> None:
    work = Work(store)
    reactor = Reactor(store, {}, work)
    await work.after("from-a-newer-version", "k")
    await reactor.drain()
    assert (await reactor.backlog()).parked == 1


async def test_serve_runs_work_when_woken_and_stops(store: DocumentStore) -> None:
    work = Work(store)
    done = asyncio.Event()

    async def reconcile(key: str) -> None:
        done.set()

    reactor = Reactor(store, {"club": reconcile}, work)
    stop = asyncio.Event()
    worker = asyncio.create_task(reactor.serve(stop, idle_seconds=30))
    await work.after("club", "c1")
    await asyncio.wait_for(done.wait(), 10)
    stop.set()
    await asyncio.wait_for(worker, 10)


# --- modify -------------------------------------------------------------------------------------


async def test_modify_creates_replaces_keeps_and_deletes(store: DocumentStore) -> None:
    def create(doc: Doc | None) -> Doc:
        assert doc is None
        return {"id": "d", "pk": "p", "n": 1}

    created = await modify(store, "system", "p", "d", create)
    assert created is not None
    assert created["n"] == 1

    def bump(doc: Doc | None) -> Doc:
        assert doc is not None
        return {**doc, "n": doc["n"] + 1}

    bumped = await modify(store, "system", "p", "d", bump)
    assert bumped is not None
    assert bumped["n"] == 2
    kept = await modify(store, "system", "p", "d", lambda doc: KEEP)
    assert kept is not None
    assert kept["n"] == 2
    assert await modify(store, "system", "p", "d", lambda doc: None) is None
    assert await store.read("system", "p", "d") is None
    assert await modify(store, "system", "p", "d", lambda doc: None) is None


async def test_modify_applies_concurrent_changes_one_after_another(store: DocumentStore) -> None:
    await store.create("system", {"id": "counter", "pk": "p", "n": 0})

    def bump(doc: Doc | None) -> Doc:
        assert doc is not None
        return {**doc, "n": doc["n"] + 1}

    await asyncio.gather(
        *(modify(store, "system", "p", "counter", bump, attempts=50) for _ in range(10))
    )
    doc = await store.read("system", "p", "counter")
    assert doc is not None
    assert doc["n"] == 10


async def test_modify_gives_up_with_503_after_its_attempts(store: DocumentStore) -> None:
    spied = spy(store)
    await store.create("system", {"id": "d", "pk": "p", "n": 0})
    from switchboard.ports import PreconditionFailed

    spy_of(spied).fail["replace"] = PreconditionFailed()
    with pytest.raises(errors.DependencyUnavailable):
        await modify(spied, "system", "p", "d", lambda doc: {**(doc or {}), "n": 1}, attempts=3)
    assert spy_of(spied).calls["read"] == 3
