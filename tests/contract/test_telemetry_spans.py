"""Telemetry on the Azure code path: one request through the route decorator is one SERVER span,
and the Azure SDKs' own spans for the store (Cosmos, against the Cosmos-protocol server) and for
ACS (over the canned transport) are its children; no attribute carries a user id or a token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from switchboard import telemetry_setup
from tests.azure_transport import CREATE_IDENTITY_201, Reply
from tests.contract.test_azure_mode import AzureWorld, azure  # noqa: F401  (the fixture)

pytestmark = pytest.mark.cosmos


_EXPORTER = InMemorySpanExporter()
_TRACER_PROVIDER = TracerProvider()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # One tracer provider for the process: OpenTelemetry's global is set once.
    _EXPORTER.clear()
    telemetry_setup.install(
        _TRACER_PROVIDER, MeterProvider(metric_readers=[InMemoryMetricReader()])
    )
    telemetry_setup.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    yield _EXPORTER
    telemetry_setup.reset()


async def test_a_request_is_one_server_span_with_its_dependencies_as_children(
    azure: AzureWorld,  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    secret = "eyJhbGciOiJSUzI1NiJ9.acs-token-for-alice.signature"
    body = {**CREATE_IDENTITY_201, "accessToken": {**CREATE_IDENTITY_201["accessToken"]}}
    body["accessToken"]["token"] = secret
    azure.acs.answers.append(Reply(201, body))
    response = await azure.client.request(
        "POST", "/api/token", headers=azure.caller("alice-object-id")
    )
    assert response.status == 200
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    [server] = [s for s in finished if s.kind == SpanKind.SERVER]
    assert server.name == "POST /api/token"
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    below = _descendants(finished, server)
    names = {span.name for span in below}
    # The SDKs' own spans: the store's (Cosmos) and ACS's, each with its HTTP call beneath.
    assert any(name.startswith("ContainerProxy.") for name in names), names
    assert "CommunicationIdentityClient.create_user_and_token" in names, names
    assert {span.kind for span in below} >= {SpanKind.INTERNAL, SpanKind.CLIENT}
    assert len(below) == len(finished) - 1  # nothing outside the request's tree
    token = response.json()["token"]
    assert token == secret
    for span in finished:
        for value in (span.attributes or {}).values():
            assert "alice-object-id" not in str(value), (span.name, value)
            assert token not in str(value)


def _descendants(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    ids = {root.context.span_id}
    found: list[ReadableSpan] = []
    changed = True
    while changed:
        changed = False
        for span in spans:
            if span.parent and span.parent.span_id in ids and span.context.span_id not in ids:
                ids.add(span.context.span_id)
                found.append(span)
                changed = True
    return found
