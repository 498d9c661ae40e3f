"""CosmosStore's own behaviour beyond the shared contract: how service failures reach the app.

A failing Cosmos DB is played by a tiny aiohttp server on 127.0.0.1 that answers the account
lookup like Cosmos and every other request with the status under test, so the real SDK runs its
real pipeline (no SDK class is patched).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from switchboard.adapters._store_rules import encode_continuation
from switchboard.adapters.cosmos_store import CosmosStore
from switchboard.errors import DependencyUnavailable, InvalidInput
from switchboard.ports import CONTAINERS

KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

# As few SDK retries as the SDK allows, without its back-off sleeps. azure-cosmos 4.17 reads
# `retry_throttle_total or retry_total or 9`, so 0 cannot switch throttling retries off: one
# retry after 1 ms (instead of the service's hint) is the least there is.
NO_RETRIES: dict[str, Any] = {
    "retry_total": 0,
    "retry_connect": 0,
    "retry_read": 0,
    "retry_backoff_max": 0,
    "retry_throttle_total": 1,
    "retry_fixed_interval": 1,
}


@dataclass
class FakeCosmos:
    """What the fake answers to everything but the account lookup, and what it was asked."""

    endpoint: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)  # containers answered as deleted
    metadata_status: int = 200  # what container reads answer (ping reads only those)
    container_reads: list[str] = field(default_factory=list)


@pytest.fixture
async def fake_cosmos() -> AsyncIterator[FakeCosmos]:
    fake = FakeCosmos()

    async def account(request: web.Request) -> web.Response:
        location = {"name": "local", "databaseAccountEndpoint": fake.endpoint}
        return web.json_response(
            {
                "id": "fake",
                "writableLocations": [location],
                "readableLocations": [location],
                "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            }
        )

    # Metadata reads (container properties, partition key ranges) succeed, as they do on a
    # throttled account: the SDK needs them before it sends the document request under test.
    async def container(request: web.Request) -> web.Response:
        name = request.match_info["container"]
        fake.container_reads.append(name)
        if name in fake.missing:
            # What Cosmos answers for a deleted container: 404, sub-status 1003.
            return web.json_response(
                {"code": "NotFound", "message": "Resource Not Found"},
                status=404,
                headers={"x-ms-substatus": "1003"},
            )
        if fake.metadata_status != 200:
            return web.json_response(
                {"code": "Failure", "message": "played by the test"},
                status=fake.metadata_status,
                headers=fake.headers,
            )
        return web.json_response(
            {
                "id": name,
                "_rid": f"rid-{name}",
                "_self": f"dbs/db/colls/{name}/",
                "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
            }
        )

    async def partition_key_ranges(request: web.Request) -> web.Response:
        # Read as a change feed: the SDK asks again with If-None-Match until "not modified".
        if "If-None-Match" in request.headers:
            return web.Response(status=304, headers={"etag": "1"})
        ranges = [{"id": "0", "minInclusive": "", "maxExclusive": "FF"}]
        return web.json_response({"PartitionKeyRanges": ranges, "_count": 1}, headers={"etag": "1"})

    async def anything(request: web.Request) -> web.Response:
        fake.requests.append(f"{request.method} {request.path}")
        return web.json_response(
            {"code": "Failure", "message": "played by the test"},
            status=fake.status,
            headers=fake.headers,
        )

    app = web.Application()
    app.router.add_get("/", account)
    app.router.add_get("/dbs/{database}/colls/{container}{slash:/?}", container)
    app.router.add_get("/dbs/{database}/colls/{container}/pkranges{slash:/?}", partition_key_ranges)
    app.router.add_route("*", "/{tail:.+}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.endpoint = f"http://127.0.0.1:{port}/"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def store(fake_cosmos: FakeCosmos) -> AsyncIterator[CosmosStore]:
    cosmos_store = CosmosStore(fake_cosmos.endpoint, "db", KEY, **NO_RETRIES)
    yield cosmos_store
    await cosmos_store.close()


Operation = Callable[[CosmosStore], object]

OPERATIONS: dict[str, Callable[[CosmosStore], object]] = {
    "read": lambda s: s.read("users", "u1", "u1"),
    "read_many": lambda s: s.read_many("users", [("u1", "u1"), ("u2", "u2")]),
    "create": lambda s: s.create("users", {"id": "u1", "pk": "u1"}),
    "replace": lambda s: s.replace("users", {"id": "u1", "pk": "u1"}, "etag"),
    "upsert": lambda s: s.upsert("users", {"id": "u1", "pk": "u1"}),
    "delete": lambda s: s.delete("users", "u1", "u1"),
    "query": lambda s: s.query("users", "u1", where={"a": 1}),
}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_throttling_is_unavailable_with_the_services_retry_hint(
    fake_cosmos: FakeCosmos, store: CosmosStore, operation: Operation
) -> None:
    fake_cosmos.status = 429
    fake_cosmos.headers = {"x-ms-retry-after-ms": "2500", "x-ms-substatus": "3200"}
    with pytest.raises(DependencyUnavailable) as raised:
        await operation(store)  # type: ignore[misc]
    assert raised.value.dependency == "store"
    assert raised.value.retry_after == 3  # 2.5 s, rounded up
    assert fake_cosmos.requests, "the request reached the service"


@pytest.mark.parametrize("status", [503, 408, 500])
async def test_service_trouble_is_unavailable(
    fake_cosmos: FakeCosmos, store: CosmosStore, status: int
) -> None:
    fake_cosmos.status = status
    with pytest.raises(DependencyUnavailable) as raised:
        await store.upsert("users", {"id": "u1", "pk": "u1"})
    assert raised.value.retry_after >= 1


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_unavailable_and_logged_without_secrets(
    fake_cosmos: FakeCosmos, store: CosmosStore, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    fake_cosmos.status = status
    with pytest.raises(DependencyUnavailable):
        await store.upsert("users", {"id": "u1", "pk": "u1"})
    (record,) = [r for r in caplog.records if r.name == "switchboard.cosmos"]
    assert "COSMOS_KEY" in record.getMessage()
    assert KEY not in record.getMessage()


async def test_a_missing_container_is_unavailable_not_a_missing_document(
    fake_cosmos: FakeCosmos, store: CosmosStore
) -> None:
    # Sub-status 1003: the database or container itself does not exist (a broken deployment).
    fake_cosmos.status = 404
    fake_cosmos.headers = {"x-ms-substatus": "1003"}
    with pytest.raises(DependencyUnavailable):
        await store.read("users", "u1", "u1")


async def test_ping_of_a_missing_database_is_unavailable(
    fake_cosmos: FakeCosmos, store: CosmosStore
) -> None:
    fake_cosmos.missing = set(CONTAINERS)  # no database: every container read is a 404
    with pytest.raises(DependencyUnavailable):
        await store.ping()


async def test_ping_when_throttled_is_unavailable_with_the_services_retry_hint(
    fake_cosmos: FakeCosmos, store: CosmosStore
) -> None:
    fake_cosmos.metadata_status = 429
    fake_cosmos.headers = {"x-ms-retry-after-ms": "2500", "x-ms-substatus": "3200"}
    with pytest.raises(DependencyUnavailable) as raised:
        await store.ping()
    assert raised.value.retry_after == 3


async def test_ping_reads_every_container_and_a_missing_one_is_unavailable(
    fake_cosmos: FakeCosmos, store: CosmosStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.ping()
    assert sorted(fake_cosmos.container_reads) == sorted(CONTAINERS)
    fake_cosmos.missing = {"users"}  # the container was deleted after the app started
    with pytest.raises(DependencyUnavailable) as raised:
        await store.ping()
    assert raised.value.dependency == "store"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "switchboard.cosmos"]
    assert "users" in line
    assert "identities" not in line


async def test_an_unreachable_endpoint_is_unavailable() -> None:
    # What is checked is the mapping (a refused connection is a 503 with a retry hint), not how
    # long it took: a wall-clock bound flakes on a loaded machine.
    with socket_that_refuses() as port:
        unreachable = CosmosStore(f"https://127.0.0.1:{port}/", "db", KEY, **NO_RETRIES)
        try:
            with pytest.raises(DependencyUnavailable) as raised:
                await unreachable.read("users", "u1", "u1")
            assert raised.value.dependency == "store"
            assert raised.value.retry_after == 5
            with pytest.raises(DependencyUnavailable):
                await unreachable.ping()
        finally:
            await unreachable.close()


async def test_the_client_is_created_once_and_reused(
    fake_cosmos: FakeCosmos, store: CosmosStore
) -> None:
    fake_cosmos.status = 429  # fails fast; the client is what the test watches
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            await store.delete("users", "u1", "u1")
    first = store._client  # the only private peek: "one client per process" is the point
    with pytest.raises(DependencyUnavailable):
        await store.delete("users", "u1", "u1")
    assert store._client is first


async def test_from_settings_with_a_key_uses_the_key() -> None:
    store = CosmosStore.from_settings("https://example.invalid/", "db", KEY, None)
    assert store._credential == KEY
    await store.close()


async def test_from_settings_without_a_key_uses_managed_identity() -> None:
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    user_assigned = CosmosStore.from_settings("https://example.invalid/", "db", None, "client-id")
    assert isinstance(user_assigned._credential, ManagedIdentityCredential)
    await user_assigned.close()
    default = CosmosStore.from_settings("https://example.invalid/", "db", None, None)
    assert isinstance(default._credential, DefaultAzureCredential)
    await default.close()


class socket_that_refuses:
    """A port on 127.0.0.1 that nothing listens on while the block runs."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port: int = self._socket.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


async def test_a_continuation_cosmos_refuses_is_invalid_input(
    fake_cosmos: FakeCosmos, store: CosmosStore
) -> None:
    # A caller can wrap any inner token in the right outer shape; Cosmos answers 400 to a token
    # it cannot parse. That is the caller's bad input (400), not a server error (500).
    fake_cosmos.status = 400
    forged = encode_continuation({"s": [None, False], "c": '{"token":"forged","range":{}}'})
    with pytest.raises(InvalidInput) as raised:
        await store.query("users", "u1", continuation=forged)
    assert raised.value.field == "continuation"
    assert fake_cosmos.requests, "the request reached the service"
