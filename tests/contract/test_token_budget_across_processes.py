"""The token budget holds across instances: two processes on one Cosmos database (the npm
Cosmos-protocol server), each sending a user's token requests at the same moment, issue no more
than the budget between them; another user is served at that moment (issue 21 B1)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from switchboard.adapters.acs_local import LocalIdentityIssuer
from switchboard.adapters.cosmos_store import CosmosStore, create_database_and_containers
from switchboard.services.caller import Caller
from switchboard.services.identity import IdentityService, TokenPolicy
from switchboard.services.token_budget import TokenBudget
from tests.contract.conftest import REPO_ROOT, TEST_CLIENT_OPTIONS, CosmosServer

pytestmark = pytest.mark.cosmos

BUDGET = "5/10m"
PER_PROCESS = 6

# One instance: its own store client and identity service, the shared database and ACS stand-in
# (the local issuer on one data dir), `PER_PROCESS` requests of alice's at `start_at`, and bob's.
INSTANCE = """
import asyncio, json, sys, time
from pathlib import Path
from switchboard import errors
from switchboard.adapters.acs_local import LocalIdentityIssuer
from switchboard.adapters.cosmos_store import CosmosStore
from switchboard.services.caller import Caller
from switchboard.services.identity import IdentityService, TokenPolicy
from switchboard.services.token_budget import TokenBudget
from tests.contract.conftest import TEST_CLIENT_OPTIONS

endpoint, database, key, data_dir, budget, count, start_at, with_bob = sys.argv[1:]


async def main() -> None:
    store = CosmosStore(endpoint, database, key, **TEST_CLIENT_OPTIONS)
    service = IdentityService(
        store,
        LocalIdentityIssuer(Path(data_dir)),
        TokenPolicy(("chat", "voip"), 60),
        token_budget=TokenBudget.parse(budget),
    )
    await store.read("users", "warm-up", "warm-up")  # connect before the shared moment
    await asyncio.sleep(max(0.0, float(start_at) - time.time()))
    requests = [service.issue_token(Caller("alice"), None, None) for _ in range(int(count))]
    if with_bob == "1":
        requests.append(service.issue_token(Caller("bob"), None, None))
    results = await asyncio.gather(*requests, return_exceptions=True)
    alice = results[: int(count)]
    print(json.dumps({
        "ok": sum(not isinstance(r, BaseException) for r in alice),
        "limited": sum(isinstance(r, errors.TokenRateLimited) for r in alice),
        "other": [repr(r) for r in alice
                  if isinstance(r, BaseException) and not isinstance(r, errors.TokenRateLimited)],
        "bob": None if with_bob != "1" else repr(results[-1])[:40],
    }))
    await store.close()


asyncio.run(main())
"""


async def test_two_processes_issue_no_more_than_the_budget(
    cosmos_server: CosmosServer, tmp_path: Path
) -> None:
    database = f"budget-{uuid.uuid4().hex[:12]}"
    await create_database_and_containers(
        cosmos_server.endpoint, database, cosmos_server.key, **TEST_CLIENT_OPTIONS
    )
    # Alice exists with one token spent: what is left (4) is what both instances may issue.
    store = CosmosStore(cosmos_server.endpoint, database, cosmos_server.key, **TEST_CLIENT_OPTIONS)
    acs = LocalIdentityIssuer(tmp_path)
    service = IdentityService(
        store, acs, TokenPolicy(("chat", "voip"), 60), token_budget=TokenBudget.parse(BUDGET)
    )
    await service.issue_token(Caller("alice"), None, None)
    await acs.close()

    outcomes = await asyncio.to_thread(
        _run_instances, cosmos_server, database, tmp_path, start_at=time.time() + 6
    )

    assert [o["other"] for o in outcomes] == [[], []]  # no 503 from lost races
    assert sum(o["ok"] for o in outcomes) == 4
    assert sum(o["limited"] for o in outcomes) == 2 * PER_PROCESS - 4
    assert outcomes[0]["bob"].startswith("UserToken(")
    record = await store.read("users", "alice", "tokens:alice")
    assert record is not None
    await store.close()


def _run_instances(
    cosmos_server: CosmosServer, database: str, data_dir: Path, *, start_at: float
) -> list[dict[str, Any]]:
    """Two instances started together, each answering at `start_at`; what each reported."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                INSTANCE,
                cosmos_server.endpoint,
                database,
                cosmos_server.key,
                str(data_dir),
                BUDGET,
                str(PER_PROCESS),
                str(start_at),
                "1" if n == 0 else "0",
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    return outcomes
