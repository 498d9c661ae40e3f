"""One back-off and one time bound for every Azure adapter (issue 21 B2, B3), through each SDK
over a fake transport: after a 429 no call reaches the service until its Retry-After is over
(every caller gets 503 with the remaining wait), and a service that never answers is a 503
within the bound, with a log line naming it. The ACS identity adapter's own tests are in
test_acs_azure.py; the kit's in test_azure_kit.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from azure.core.rest import AsyncHttpResponse, HttpRequest

from switchboard.adapters import azure as kit
from switchboard.adapters.chat_azure import AzureChatProvider
from switchboard.adapters.graph_azure import GraphMeetingProvider
from switchboard.adapters.push_azure import AzurePushHub
from switchboard.adapters.sms_azure import AzureSmsSender
from switchboard.errors import DependencyUnavailable
from tests.adapters import test_chat_azure as chat_tests
from tests.adapters import test_graph_azure as graph_tests
from tests.adapters import test_push_azure as push_tests
from tests.adapters import test_sms_azure as sms_tests
from tests.azure_transport import MockTransport, Reply, error_body


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


Adapter = Any
# (name, build(transport-like), call(adapter), a 429 reply for that service)
Case = tuple[str, Callable[[Any], Adapter], Callable[[Adapter], Awaitable[Any]]]


def _sms(transport: MockTransport) -> AzureSmsSender:
    return AzureSmsSender.from_settings(
        sms_tests.SENDER,
        endpoint=None,
        connection_string=sms_tests.CONNECTION_STRING,
        managed_identity_client_id=None,
        transport=transport,
        retry_total=0,
    )


def _hub(transport: MockTransport) -> AzurePushHub:
    return AzurePushHub.from_connection_string(
        push_tests.CONNECTION_STRING, "calls", transport=transport, retry_total=0
    )


def _chat(transport: MockTransport) -> AzureChatProvider:
    return AzureChatProvider(
        chat_tests.ENDPOINT,
        chat_tests.TokenSource(),
        throttle_budget=0,  # no waiting inside the request: the window alone is under test
        transport=transport,
        retry_total=0,
    )


AZURE_CORE_CASES: list[Case] = [
    ("sms", _sms, lambda a: a.send(sms_tests.TO, "hello", tag="invite")),
    ("push", _hub, lambda a: a.delete_installation("inst-1")),
    ("chat", _chat, lambda a: a.delete_thread(chat_tests.THREAD_ID)),
]


@pytest.mark.parametrize(("name", "build", "call"), AZURE_CORE_CASES, ids=lambda c: str(c))
async def test_after_a_429_no_call_until_its_retry_after(
    name: str, build: Callable[[Any], Adapter], call: Callable[[Adapter], Awaitable[Any]]
) -> None:
    transport = MockTransport.replying(
        Reply(429, error_body("TooManyRequests", "slow down"), {"Retry-After": "20"})
    )
    adapter = build(transport)
    clock = Clock()
    adapter.backoff = kit.Backoff(name, clock=clock)
    with pytest.raises(DependencyUnavailable) as first:
        await call(adapter)
    assert first.value.retry_after == 20
    clock.now += 5
    for _ in range(10):
        with pytest.raises(DependencyUnavailable) as later:
            await call(adapter)
        assert later.value.retry_after == 15
    assert len(transport.requests) == 1
    clock.now += 15
    transport.answers.append(Reply(500, error_body("Down", "still down")))
    with pytest.raises(DependencyUnavailable):
        await call(adapter)
    assert len(transport.requests) == 2  # the window over, the next call went out
    await adapter.close()


@pytest.mark.parametrize(("name", "build", "call"), AZURE_CORE_CASES, ids=lambda c: str(c))
async def test_a_service_that_never_answers_is_a_503_within_the_bound(
    name: str,
    build: Callable[[Any], Adapter],
    call: Callable[[Adapter], Awaitable[Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def never(request: HttpRequest) -> AsyncHttpResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    adapter = build(MockTransport(never))
    adapter.call_bound = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING), pytest.raises(DependencyUnavailable) as raised:
        await call(adapter)
    assert loop.time() - started < 2
    assert raised.value.retry_after == kit.TIMEOUT_RETRY_AFTER_SECONDS
    assert any("gave no answer within" in r.getMessage() for r in caplog.records)
    await adapter.close()


def _graph(handler: Callable[[httpx.Request], Any]) -> GraphMeetingProvider:
    return GraphMeetingProvider(
        organizer_id=graph_tests.ORGANIZER,
        lobby_bypass="everyone",
        credential_factory=graph_tests.StaticTokenCredential,
        transport=httpx.MockTransport(handler),
    )


async def test_graph_after_a_429_no_call_until_its_retry_after() -> None:
    seen: list[httpx.Request] = []

    def throttled(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        # Longer than the SDK's in-request retry bound: answered 503 with this wait.
        return httpx.Response(
            429, json={"error": {"code": "TooManyRequests"}}, headers={"Retry-After": "40"}
        )

    provider = _graph(throttled)
    clock = Clock()
    provider.backoff = kit.Backoff("graph", clock=clock)
    with pytest.raises(DependencyUnavailable) as first:
        await provider.delete_meeting("meeting-1")
    assert first.value.retry_after == 40
    calls = len(seen)
    clock.now += 10
    for _ in range(5):
        with pytest.raises(DependencyUnavailable) as later:
            await provider.delete_meeting("meeting-1")
        assert later.value.retry_after == 30
    assert len(seen) == calls
    await provider.close()


async def test_graph_that_never_answers_is_a_503_within_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    provider = _graph(never)
    provider.call_bound = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING), pytest.raises(DependencyUnavailable):
        await provider.delete_meeting("meeting-1")
    assert loop.time() - started < 2
    assert any("Graph delete gave no answer" in r.getMessage() for r in caplog.records)
    await provider.close()
