"""Cold start as a Functions instance pays it: import plus a new user's first `POST /api/token`,
in fresh processes, beside the FLOOR (bench/floor_app.py) doing the same verify, read and sign.

Two modes of Switchboard:
- embedded: the runtime the environment describes (SQLite store, local ACS issuer, dev auth);
- azure: the Cosmos DB store and the ACS Identity adapter over zero-latency in-process
  transports (bench/azure_fakes.py), so SDK imports, client construction and the SDKs' own
  first-request work count, and the network does not.

Each probe times from its first import to the handler's answer. The data dir is made once
beforehand (run 0, not counted), as on a restart: generating dev keys is not a cold start.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.floor import floor_cold_start

COLD_RUNS = 7  # the first is discarded

PROBE = """
import asyncio, os, sys, time
t = time.perf_counter()
import azure.functions as func
import function_app
from switchboard import runtime

if os.environ.get("BENCH_MODE") == "azure":
    from bench.azure_fakes import (
        ACS_CONNECTION_STRING, COSMOS_ENDPOINT, COSMOS_KEY, FakeAcsTransport, FakeCosmosTransport
    )
    from switchboard.adapters.acs_azure import AzureIdentityProvider
    from switchboard.adapters.cosmos_store import CosmosStore
    from switchboard.settings import load_settings

    settings = load_settings()
    dev_issuer = runtime.build_dev_issuer(settings)
    runtime.set_runtime(runtime.Runtime(settings, runtime.Adapters(
        store=CosmosStore(
            COSMOS_ENDPOINT, "switchboard", COSMOS_KEY, transport=FakeCosmosTransport()
        ),
        identity_provider=AzureIdentityProvider.from_connection_string(
            ACS_CONNECTION_STRING, transport=FakeAcsTransport()
        ),
        authenticator=runtime.build_authenticator(settings, dev_issuer),
        dev_issuer=dev_issuer,
    )))
handler = next(
    f.get_user_function() for f in function_app.app.get_functions()
    if f.get_function_name() == "issue_token"
)
token, _ = runtime.get_runtime().adapters.dev_issuer.issue(sys.argv[1], None)
req = func.HttpRequest(method="POST", url="http://localhost/api/token",
                       headers={"authorization": "Bearer " + token}, body=b"")
resp = asyncio.run(handler(req))
assert resp.status_code == 200, (resp.status_code, resp.get_body())
print(time.perf_counter() - t)
"""


def first_token_ms(mode: str, env: dict[str, str], cwd: Path) -> float:
    """Median ms from `import function_app` to a new user's first token, in `mode`."""
    samples = []
    with tempfile.TemporaryDirectory() as data:
        for run in range(COLD_RUNS):
            out = subprocess.run(
                [sys.executable, "-c", PROBE, f"cold-{mode}-{run}"],
                cwd=cwd,
                env={**env, "SWITCHBOARD_DATA_DIR": data, "BENCH_MODE": mode},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if run:  # run 0 made the keys and the database
                samples.append(float(out.split()[-1]))
    return statistics.median(samples) * 1000


def cold_start(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Import + first token, embedded and Azure mode, beside the floor app's import + answer."""
    with tempfile.TemporaryDirectory() as data:
        floor_ms = statistics.median(floor_cold_start(Path(data), env, cwd, COLD_RUNS - 1)) * 1000
    embedded = first_token_ms("embedded", env, cwd)
    azure = first_token_ms("azure", env, cwd)
    return {
        "floor_ms": round(floor_ms, 1),
        "embedded_ms": round(embedded, 1),
        "embedded_ratio": round(embedded / floor_ms, 2),
        "azure_ms": round(azure, 1),
        "azure_ratio": round(azure / floor_ms, 2),
        "runs": COLD_RUNS - 1,
    }


def report_lines(cold: dict[str, Any], steady: dict[str, Any]) -> list[str]:
    """The docs/performance.md table rows for the cold-start and steady-state ratios."""
    return [
        f"| cold start: import + a new user's first `POST /api/token` (median of {cold['runs']})"
        " | ms | ratio to floor |",
        "|---|---|---|",
        "| floor: bare azure.functions app + PyJWT/cryptography/sqlite3, same verify, read,"
        f" sign | {cold['floor_ms']} | 1 |",
        "| embedded (SQLite, local ACS issuer)"
        f" | {cold['embedded_ms']} | {cold['embedded_ratio']} |",
        "| azure (Cosmos + ACS SDKs over zero-latency transports)"
        f" | {cold['azure_ms']} | {cold['azure_ratio']} |",
        "",
        "| steady state: `POST /api/token`, known user (median) | ms | ratio to floor |",
        "|---|---|---|",
        f"| floor work in a loop (verify, read, sign) | {steady['floor_ms']} | 1 |",
        f"| embedded adapters | {steady['embedded_ms']} | {steady['ratio']} |",
    ]
