"""The reaction layer's Azure functions (blueprints/reactions.py), called as the Functions host
calls them: the Cosmos DB trigger with a batch of change-feed documents, the timer sweep with a
timer request; and their registration, present only when the store is Cosmos DB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from blueprints import reactions
from switchboard.errors import DependencyUnavailable
from switchboard.services.reactions import SHARDS, WORK
from tests.conftest import Client
from tests.proxies import spy_of

ROOT = Path(__file__).resolve().parents[2]


def _functions() -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    app = func.FunctionApp()
    app.register_functions(reactions.bp)
    found = {}
    for fn in app.get_functions():
        [binding] = json.loads(fn.get_function_json())["bindings"]
        found[str(fn.get_function_name())] = (fn.get_user_function(), binding)
    return found


FUNCTIONS = _functions()


class Tick(func.TimerRequest):
    @property
    def past_due(self) -> bool:
        return False


async def _feed_batch(client: Client) -> func.DocumentList:
    """What the change feed would deliver now: every work item as stored."""
    docs = []
    for shard in range(SHARDS):
        page = await client.runtime.adapters.store.query(WORK, f"shard-{shard}", limit=1000)
        docs += [func.Document.from_dict(d) for d in page.items]
    return func.DocumentList(docs)


def test_the_trigger_reads_the_work_feed_with_the_identity_connection() -> None:
    _, feed = FUNCTIONS["work_feed"]
    assert feed["type"] == "cosmosDBTrigger"
    assert feed["connection"] == "COSMOS"  # COSMOS__accountEndpoint / __credential / __clientId
    assert feed["databaseName"] == "%COSMOS_DATABASE%"
    assert feed["containerName"] == "work"
    assert feed["leaseContainerName"] == "leases"
    assert feed["createLeaseContainerIfNotExists"] is False
    _, sweep = FUNCTIONS["work_sweep"]
    assert sweep["type"] == "timerTrigger"
    assert sweep["schedule"] == "*/10 * * * * *"


async def test_the_feed_runs_the_due_work_it_is_given(client: Client) -> None:
    rt = client.runtime
    alice = client.login("alice")
    await client.request("GET", "/api/me", headers=alice)
    assert (await client.request("DELETE", "/api/me", headers=alice)).status == 204
    await rt.work.before("erasure", "not-yet-due")  # recorded before a change: the sweep's
    batch = await _feed_batch(client)
    assert len(batch) == 2
    handler, _ = FUNCTIONS["work_feed"]
    # A document of another container, or delivered twice, is ignored; the not-yet-due stays.
    batch.append(func.Document.from_dict({"id": "x", "pk": "alice", "kind": "erasure"}))
    batch.append(batch[0])
    await handler(batch)
    record = await rt.adapters.store.read("users", "erasure:alice", "erasure")
    assert record is not None
    assert record["passes"] == 1  # the first purge pass ran; the second is due after the grace
    assert (await rt.reactor.backlog()).pending == 2  # that pass and the not-yet-due item
    # Delivered again (the feed is at least once): nothing due, nothing runs, nothing breaks.
    assert await rt.reactor.run_documents([d.to_dict() for d in await _feed_batch(client)]) == 0
    await handler(await _feed_batch(client))
    assert (await rt.reactor.backlog()).pending == 2


async def test_the_sweep_runs_what_the_feed_left(client: Client) -> None:
    rt = client.runtime
    for n in range(3):
        await rt.work.after("erasure", f"gone-{n}")
    handler, _ = FUNCTIONS["work_sweep"]
    await handler(Tick())
    assert (await rt.reactor.backlog()).pending == 0


async def test_a_store_outage_loses_nothing(fake_acs_client: Client) -> None:
    rt = fake_acs_client.runtime
    await rt.work.after("erasure", "bob")
    batch = await _feed_batch(fake_acs_client)
    store = spy_of(rt.adapters.store)
    store.fail["read"] = DependencyUnavailable("store")
    store.fail["query"] = DependencyUnavailable("store")
    feed, _ = FUNCTIONS["work_feed"]
    sweep, _ = FUNCTIONS["work_sweep"]
    await feed(batch)  # logged, not raised: the item stays for the sweep
    await sweep(Tick())
    store.fail.clear()
    assert (await rt.reactor.backlog()).pending == 1
    await sweep(Tick())
    assert (await rt.reactor.backlog()).pending == 0


@pytest.mark.parametrize(("store", "expected"), [("cosmos", True), ("sqlite", False), ("", False)])
def test_the_functions_are_registered_only_with_the_cosmos_store(
    store: str, expected: bool
) -> None:
    """`func start` on SQLite must not need a Cosmos connection: the functions are not there."""
    script = (
        "import function_app\n"
        "print(sorted(str(f.get_function_name()) for f in function_app.app.get_functions()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_STORE"}
    if store:
        env["SWITCHBOARD_STORE"] = store
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    names = out.stdout
    assert ("'work_feed'" in names) is expected
    assert ("'work_sweep'" in names) is expected
    assert "'health'" in names
