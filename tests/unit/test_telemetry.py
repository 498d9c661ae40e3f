"""Telemetry: off costs nothing (no OpenTelemetry import, no-op spans and counters); on, the
counters move with what happens and refuse any attribute outside their declared values, and URLs
lose the ids in their paths."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from switchboard import errors, telemetry, telemetry_setup
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.services.reactions import Reactor, Work

REPO_ROOT = Path(__file__).resolve().parents[2]
_TRACER_PROVIDER = TracerProvider()


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    metric_reader = InMemoryMetricReader()
    telemetry_setup.install(_TRACER_PROVIDER, MeterProvider(metric_readers=[metric_reader]))
    yield metric_reader
    telemetry_setup.reset()


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], Any]:
    data = reader.get_metrics_data()
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    found[key] = getattr(point, "value", None)
    return found


def test_off_imports_nothing_of_opentelemetry() -> None:
    code = (
        "import sys, function_app\n"
        "from switchboard import telemetry\n"
        "with telemetry.server_span('x', 'GET', 'health'): pass\n"
        "telemetry.TOKENS_ISSUED.add(1)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_attributes_outside_the_declared_values_never_reach_a_metric(
    reader: InMemoryMetricReader,
) -> None:
    telemetry.TOKENS_ISSUED.add(1, user="alice")
    telemetry.DEPENDENCY_THROTTLED.add(1, dependency="alice@example.com")
    telemetry.SMS.add(1, outcome="+15555550100")
    telemetry.REACTIONS_DONE.add(1, kind="8:acs:1234-5678")
    telemetry.DEPENDENCY_THROTTLED.add(1, dependency="acs")
    points = _points(reader)
    assert points[("switchboard.tokens.issued", ())] == 1
    assert points[("switchboard.dependency.throttled", (("dependency", "other"),))] == 1
    assert points[("switchboard.dependency.throttled", (("dependency", "acs"),))] == 1
    assert points[("switchboard.sms", (("outcome", "other"),))] == 1
    assert points[("switchboard.reactions.done", (("kind", "other"),))] == 1
    everything = repr(points)
    for secret in ("alice", "+1555", "8:acs"):
        assert secret not in everything


def test_urls_lose_their_ids() -> None:
    assert (
        telemetry.safe_url("https://db.example:443/dbs/app/colls/users/docs/alice@x.com/?a=1")
        == "https://db.example:443/dbs/app/colls/users/docs/{id}/"
    )
    assert (
        telemetry.safe_url(
            "https://acs.example/identities/8:acs:00000005-14a2/:issueAccessToken?api-version=1"
        )
        == "https://acs.example/identities/{id}/:issueAccessToken"
    )


async def test_reaction_metrics_move(reader: InMemoryMetricReader, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    work = Work(store)
    failures = {"left": 1}

    async def club(key: str) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise errors.DependencyUnavailable("chat", retry_after=1)

    async def broken(key: str) -> None:
        raise RuntimeError("always")

    reactor = Reactor(store, {"club": club, "broken": broken}, work, max_attempts=2)
    await work.after("club", "c1")
    await work.after("broken", "b1")
    await reactor.drain()
    await reactor.backlog()
    points = _points(reader)
    assert points[("switchboard.reactions.enqueued", (("kind", "club"),))] == 1
    assert points[("switchboard.reactions.retried", (("kind", "club"),))] == 1
    assert points[("switchboard.reactions.done", (("kind", "club"),))] == 1
    assert points[("switchboard.reactions.retried", (("kind", "broken"),))] == 1
    assert points[("switchboard.reactions.parked", (("kind", "broken"),))] == 1
    assert points[("switchboard.reactions.parked_now", ())] == 1
    await store.close()


async def test_token_metrics_move_and_name_nobody(
    reader: InMemoryMetricReader, tmp_path: Path
) -> None:
    from switchboard.runtime import set_runtime
    from tests.conftest import Client, make_runtime

    rt = make_runtime(tmp_path, TOKEN_BUDGET="2/1h")
    set_runtime(rt)
    try:
        client = Client(rt)
        alice = client.login("alice")
        answers = [
            (await client.request("POST", "/api/token", headers=alice)).status for _ in range(3)
        ]
        assert answers == [200, 200, 429]
    finally:
        set_runtime(None)
        await rt.close()
    points = _points(reader)
    assert points[("switchboard.tokens.issued", ())] == 2
    assert points[("switchboard.tokens.refused", (("reason", "budget"),))] == 1
    assert "alice" not in repr(points)


async def test_dependency_throttling_is_counted_by_dependency(
    reader: InMemoryMetricReader,
) -> None:
    from switchboard.adapters.acs_azure import AzureIdentityProvider
    from tests.azure_transport import MockTransport, Reply, error_body, fake_connection_string

    transport = MockTransport.replying(
        Reply(429, error_body("TooManyRequests", "slow down"), {"Retry-After": "3"})
    )
    acs = AzureIdentityProvider.from_connection_string(
        fake_connection_string(), transport=transport, retry_total=0
    )
    with pytest.raises(errors.DependencyUnavailable):
        await acs.revoke_tokens("8:acs:someone")
    await acs.close()
    points = _points(reader)
    assert points[("switchboard.dependency.throttled", (("dependency", "acs"),))] == 1


async def test_the_sweep_reads_the_backlog_gauges_with_telemetry_on(
    reader: InMemoryMetricReader, tmp_path: Path
) -> None:
    """In Azure nobody may probe health: the timer sweep reads the backlog once a minute, so the
    parked and oldest-age gauges the alerts watch still move."""
    from blueprints import reactions as functions

    store = SqliteStore(tmp_path / "s.sqlite")
    work = Work(store)

    async def broken(key: str) -> None:
        raise RuntimeError("always")

    reactor = Reactor(store, {"broken": broken}, work, max_attempts=1)
    await work.after("broken", "b1")
    await reactor.drain()
    functions._observed_at[0] = -1e9  # as if the last reading were long ago
    await functions._observe_backlog(reactor)
    assert _points(reader)[("switchboard.reactions.parked_now", ())] == 1
    await store.close()
