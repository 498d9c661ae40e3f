"""ACS Identity over HTTP without ACS: an azure-core transport that answers the SDK from canned
responses, and the bodies the ACS REST API documents for api-version 2023-10-01 (the SDK 1.5.0
default), from Azure/azure-rest-api-specs,
specification/communication/data-plane/Identity/stable/2023-10-01/examples/:
CreateIdentity.json, IssueAccessToken.json, RevokeAccessTokens.json, DeleteIdentity.json.
Error bodies follow CommunicationErrorResponse (Common/stable/2022-07-13/common.json).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl
from azure.core.utils import CaseInsensitiveDict

ENDPOINT = "https://test.communication.azure.com"
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


@dataclass
class Canned:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SentRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class NoConnection:
    """Stands where a real transport keeps its connection; the response closes it when read."""

    async def close(self) -> None:
        pass


class CannedAcsTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    """Answers each request with the next canned response (or raises the next exception) and
    records what the SDK sent. `sleep` returns at once and records the delay, so retries and
    Retry-After never make a test wait."""

    def __init__(self, *answers: Canned | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[SentRequest] = []
        self.sleeps: list[float] = []

    async def send(self, request: HttpRequest, **kwargs: Any) -> AsyncHttpResponse:
        url = urllib.parse.urlsplit(request.url)
        content = request.content
        self.requests.append(
            SentRequest(
                method=request.method,
                path=urllib.parse.unquote(url.path),
                query=urllib.parse.parse_qs(url.query),
                headers=dict(request.headers),
                body=json.loads(content) if content else None,
            )
        )
        assert self.answers, f"unexpected request {request.method} {url.path}"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        payload = json.dumps(answer.body).encode() if answer.body is not None else b""
        headers = dict(answer.headers)
        if answer.body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"

        async def stream(**_: Any) -> AsyncIterator[bytes]:
            yield payload

        response = AsyncHttpResponseImpl(
            request=request,
            internal_response=NoConnection(),
            status_code=answer.status,
            reason="canned",
            content_type=headers.get("Content-Type"),
            headers=CaseInsensitiveDict(headers),
            stream_download_generator=stream,
        )
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
