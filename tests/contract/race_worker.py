"""The other instance of the two-process race tests: the same services on the same Cosmos
database and local chat data dir, in a process of its own (as Functions scales out), running one
side of each race while the test process runs the other. Run as
`python -m tests.contract.race_worker ENDPOINT DATABASE DATA_DIR ROLE PAIRS`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from pathlib import Path

from switchboard import errors
from switchboard.adapters.cosmos_store import CosmosStore
from switchboard.services.caller import Caller
from tests.contract.conftest import EMULATOR_KEY, TEST_CLIENT_OPTIONS
from tests.social import Social


async def main(endpoint: str, database: str, data_dir: str, role: str, pairs: int) -> None:
    store = CosmosStore(endpoint, database, EMULATOR_KEY, **TEST_CLIENT_OPTIONS)
    social = Social(store, Path(data_dir))
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start their side at once

    async def one(n: int) -> None:
        await asyncio.sleep(random.random() * 0.05)
        a, b = Caller(f"a{n}"), Caller(f"b{n}")
        with contextlib.suppress(errors.NotFound, errors.Conflict, errors.DependencyUnavailable):
            if role == "block":
                await social.friends.block(a, b.user_id)
            elif role == "unfriend":
                await social.friends.remove(a, b.user_id)
            elif role == "erase":
                await social.erase(b.user_id)

    await asyncio.gather(*(one(n) for n in range(pairs)))
    await store.close()
    print("done", flush=True)


if __name__ == "__main__":
    endpoint, database, data_dir, role, pairs = sys.argv[1:6]
    asyncio.run(main(endpoint, database, data_dir, role, int(pairs)))
