"""What an operator sees of the reaction layer: health reports the backlog (numbers only, and a
503 only when the store is down), and dev mode lists parked work and re-arms it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from switchboard.errors import DependencyUnavailable
from switchboard.services.reactions import Work
from tests.conftest import Client
from tests.proxies import spy_of


async def test_health_reports_the_backlog_as_numbers(fake_acs_client: Client) -> None:
    rt = fake_acs_client.runtime
    first = (await fake_acs_client.request("GET", "/api/health")).json()
    assert first["reactions"] == {"pending": 0, "parked": 0, "oldestAgeSeconds": None}
    await rt.work.after("erasure", "alice")
    await rt.work.before("erasure", "bob")  # not due yet
    seen = await fake_acs_client.request("GET", "/api/health")
    assert seen.status == 200
    body = seen.json()
    assert body["status"] == "ok"
    assert body["reactions"]["pending"] == 2
    assert body["reactions"]["parked"] == 0
    assert 0 <= body["reactions"]["oldestAgeSeconds"] < 60
    assert "alice" not in seen.body.decode()
    assert "bob" not in seen.body.decode()


async def test_parked_work_is_counted_not_fatal_and_listed_in_dev_mode(
    fake_acs_client: Client,
) -> None:
    rt = fake_acs_client.runtime
    alice = fake_acs_client.login("alice")
    await fake_acs_client.request("GET", "/api/me", headers=alice)
    assert (await fake_acs_client.request("DELETE", "/api/me", headers=alice)).status == 204
    # The purge keeps failing (the store refuses the phone container's reads): parked.
    store = spy_of(rt.adapters.store)
    store.fail["read:phone"] = DependencyUnavailable("store")
    await rt.reactor.drain()
    health = await fake_acs_client.request("GET", "/api/health")
    assert health.status == 200  # the app is usable: parked work is a number, not an outage
    assert health.json()["reactions"]["parked"] == 1
    listed = await fake_acs_client.request("GET", "/api/dev/work")
    assert listed.status == 200
    [item] = listed.json()["items"]
    assert item == {
        "kind": "erasure",
        "key": "alice",
        "attempts": 8,
        "lastError": "DependencyUnavailable",
    }
    # The operator fixes the cause and re-arms it: the erasure finishes.
    store.fail.clear()
    rearmed = await fake_acs_client.request("POST", "/api/dev/work/rearm")
    assert rearmed.json() == {"rearmed": 1}
    await rt.reactor.drain()
    assert (await fake_acs_client.request("GET", "/api/dev/work")).json()["items"] == []
    assert await rt.adapters.store.read("users", "erasure:alice", "erasure") is None


async def test_dev_work_routes_exist_only_in_dev_mode(tmp_path: Path) -> None:
    from switchboard.runtime import Runtime, set_runtime
    from tests.conftest import make_runtime

    dev = make_runtime(tmp_path)
    rt = Runtime(dev.settings, dataclasses.replace(dev.adapters, dev_issuer=None))
    set_runtime(rt)
    try:
        client = Client(rt)
        await Work(rt.adapters.store).after("erasure", "alice")
        assert (await client.request("GET", "/api/dev/work")).status == 404
        assert (await client.request("POST", "/api/dev/work/rearm")).status == 404
    finally:
        set_runtime(None)
        await rt.close()
