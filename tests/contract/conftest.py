"""Fixtures for the DocumentStore contract: the same `store` on SQLite and on Cosmos DB.

The Cosmos side runs against `@vercel/cosmosdb-server` from npm (tests/package.json), a Cosmos DB
protocol server started once per session on a free port. `make check` runs `npm ci` in tests/
first, so a missing server binary is a broken checkout: the Cosmos tests fail, they never skip.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from switchboard.ports import DocumentStore

REPO_ROOT = Path(__file__).resolve().parents[2]
# The test services' npm packages live beside the tests (tests/package.json), not at the root:
# the app is no Node project.
NODE_MODULES = REPO_ROOT / "tests" / "node_modules"
COSMOS_SERVER_BIN = NODE_MODULES / ".bin" / "cosmosdb-server"
COSMOS_SERVER_PACKAGE = NODE_MODULES / "@vercel" / "cosmosdb-server"

# The package's CLI answers every request with `Connection: close`, so each SDK call would pay a
# fresh TLS handshake (the suite ran 3x slower). Its library takes `keepAlive`, which the CLI does
# not expose; this starts the same server from the same package with keep-alive on, as a real
# Cosmos gateway behaves.
SERVER_SCRIPT = """
const [packageDir, port] = process.argv.slice(1);
const { createHttpsServer } = require(packageDir);
const server = createHttpsServer({ keepAlive: true });
server.listen(Number(port), "127.0.0.1", () => console.log("ready on " + port));
"""

# The Cosmos DB emulator's published, well-known account key (valid base64, as the SDK requires).
# The npm server accepts any key; this one makes the tests read like emulator code.
EMULATOR_KEY = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
)

# Test-only client options: the server's certificate is self-signed, and a failing request should
# fail at once instead of sleeping through the SDK's retry schedule.
TEST_CLIENT_OPTIONS: dict[str, Any] = {
    "connection_verify": False,
    "retry_total": 0,
    "retry_connect": 0,
    "retry_read": 0,
}

STARTUP_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class CosmosServer:
    endpoint: str
    key: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_tls(port: int) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw,
            context.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return tls.recv(12).startswith(b"HTTP/1.1")
    except OSError:
        return False


@pytest.fixture(scope="session")
def cosmos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CosmosServer]:
    """A Cosmos-protocol server over HTTPS on 127.0.0.1, for the whole session."""
    if not COSMOS_SERVER_BIN.exists():
        pytest.fail(
            f"{COSMOS_SERVER_BIN.relative_to(REPO_ROOT)} is missing: run `npm ci` (make check does)"
        )
    port = _free_port()
    log_path = tmp_path_factory.mktemp("cosmosdb-server") / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["node", "-e", SERVER_SCRIPT, str(COSMOS_SERVER_PACKAGE), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not _answers_tls(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"cosmosdb-server did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield CosmosServer(endpoint=f"https://127.0.0.1:{port}", key=EMULATOR_KEY)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(
    params=["sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)],
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    """A fresh, empty store: a new SQLite file, or a new Cosmos database with every container."""
    if request.param == "sqlite":
        from switchboard.adapters.sqlite_store import SqliteStore

        sqlite_store = SqliteStore(tmp_path / "store.sqlite")
        yield sqlite_store
        await sqlite_store.close()
        return

    from switchboard.adapters.cosmos_store import CosmosStore, create_database_and_containers

    server: CosmosServer = request.getfixturevalue("cosmos_server")
    database = f"contract-{uuid.uuid4().hex[:12]}"
    await create_database_and_containers(
        server.endpoint, database, server.key, **TEST_CLIENT_OPTIONS
    )
    cosmos_store = CosmosStore(server.endpoint, database, server.key, **TEST_CLIENT_OPTIONS)
    yield cosmos_store
    await cosmos_store.close()
