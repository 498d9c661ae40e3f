"""Azure SDKs over HTTP without Azure: one handler-style azure-core transport for every Azure
adapter's tests, in the spirit of httpx's `MockTransport(handler)`.

`MockTransport(handler)` hands each request the SDK sends to `handler(request) -> response` (or
the exception the handler raises, such as `ServiceRequestError` for a refused connection),
records what was sent, and never sleeps, so retries and Retry-After never make a test wait.
`json_response` builds a response with a status, a JSON body and headers. Without a handler the
transport answers from its `answers` queue (`Reply`s and exceptions, in order), for tests that
script a conversation.

The bodies at the end are the ones the ACS Identity REST API documents for api-version 2023-10-01
(the SDK 1.5.0 default), from Azure/azure-rest-api-specs,
specification/communication/data-plane/Identity/stable/2023-10-01/examples/:
CreateIdentity.json, IssueAccessToken.json, RevokeAccessTokens.json, DeleteIdentity.json.
Error bodies follow CommunicationErrorResponse (Common/stable/2022-07-13/common.json).
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl
from azure.core.utils import CaseInsensitiveDict

Handler = Callable[[HttpRequest], AsyncHttpResponse | Awaitable[AsyncHttpResponse]]


class _NoConnection:
    """Stands where a real transport keeps its connection; the response closes it when read."""

    async def close(self) -> None:
        pass


def json_response(
    request: HttpRequest,
    status: int,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> AsyncHttpResponse:
    """A response to `request` with `status`, `body` as JSON (none when None) and `headers`."""
    payload = json.dumps(body).encode() if body is not None else b""
    all_headers = dict(headers or {})
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json; charset=utf-8")

    async def stream(**_: Any) -> AsyncIterator[bytes]:
        yield payload

    return AsyncHttpResponseImpl(
        request=request,
        internal_response=_NoConnection(),
        status_code=status,
        reason="mock",
        content_type=all_headers.get("Content-Type"),
        headers=CaseInsensitiveDict(all_headers),
        stream_download_generator=stream,
    )


@dataclass
class SentRequest:
    """What the SDK sent: the path unquoted, the query parsed, a JSON body decoded."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    url: str = ""  # as sent, scheme, host and query included
    raw: bytes | str | None = None  # the body as sent


@dataclass
class Reply:
    """One queued answer: a status, a JSON body (none when None) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class MockTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    """An azure-core async transport that answers from `handler` and records every request.

    Pass it to any Azure SDK client as `transport=`. Without a handler it answers each request
    with the next of `answers` (raising it when it is an exception); a request with nothing
    queued fails the test. `sleep` returns at once and records the delay the SDK's retry policy
    asked for.
    """

    def __init__(self, handler: Handler | None = None, *answers: Reply | Exception) -> None:
        self.handler: Handler = handler or self._next_answer
        self.answers: list[Reply | Exception] = list(answers)
        self.requests: list[SentRequest] = []
        self.sleeps: list[float] = []

    @classmethod
    def replying(cls, *answers: Reply | Exception) -> MockTransport:
        """A transport answering from a queue that starts with `answers`."""
        return cls(None, *answers)

    def _next_answer(self, request: HttpRequest) -> AsyncHttpResponse:
        assert self.answers, f"unexpected request {request.method} {request.url}"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return json_response(request, answer.status, answer.body, answer.headers)

    async def send(self, request: HttpRequest, **kwargs: Any) -> AsyncHttpResponse:
        url = urllib.parse.urlsplit(request.url)
        # azure.core.rest requests carry `content`; the legacy transport requests that older
        # autorest SDKs (azure-communication-sms) still build carry `body`.
        content = request.content if hasattr(request, "content") else request.body
        body: Any = None
        if content:
            try:
                body = json.loads(content)
            except (TypeError, ValueError):
                body = content
        self.requests.append(
            SentRequest(
                method=request.method,
                path=urllib.parse.unquote(url.path),
                query=urllib.parse.parse_qs(url.query),
                headers=dict(request.headers),
                body=body,
                url=str(request.url),
                raw=content,
            )
        )
        answer = self.handler(request)
        response = await answer if inspect.isawaitable(answer) else answer
        await response.read()  # As real transports do for non-streamed calls.
        return response

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aexit__(self, *args: object) -> None:
        pass

    async def sleep(self, duration: float) -> None:
        self.sleeps.append(duration)


# -- ACS Identity REST examples ----------------------------------------------------------------

ENDPOINT = "https://test.communication.azure.com"


def fake_connection_string(endpoint: str = ENDPOINT) -> str:
    """An ACS connection string with a random key: what the SDKs parse and sign with, good for
    nothing else. The one source of fake ACS credentials for the tests and the benchmark."""
    key = base64.b64encode(os.urandom(32)).decode()
    return f"endpoint={endpoint}/;accesskey={key}"


API_VERSION = "2023-10-01"
# The identity of the REST examples.
USER_ID = "8:acs:2dee53b4-368b-45b4-ab52-8493fb117652_00000005-14a2-493b-8a72-5a3a0d000081"
EXAMPLE_EXPIRES_ON = datetime(2023, 10, 10, 21, 39, 39, 324458, tzinfo=UTC)

# CreateIdentity.json, 201
CREATE_IDENTITY_201 = {
    "identity": {"id": USER_ID},
    "accessToken": {"token": "token", "expiresOn": "2023-10-10T21:39:39.3244584+00:00"},
}
# IssueAccessToken.json, 200
ISSUE_ACCESS_TOKEN_200 = {"token": "token", "expiresOn": "2023-10-10T21:39:39.3244584+00:00"}


def error_body(code: str, message: str) -> dict[str, Any]:
    """CommunicationErrorResponse."""
    return {"error": {"code": code, "message": message}}
