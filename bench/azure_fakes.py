"""Zero-latency Cosmos DB and ACS Identity for the Azure-mode cold start: azure-core transports
that answer the real SDK clients from canned bodies, in process, with no socket.

So the Azure-mode figures count what a Functions instance on Azure pays in our code and the
SDKs (imports, client construction, pipelines, serialization, the Cosmos account and container
metadata lookups) and nothing of the network. They answer only what a new user's first
`POST /api/token` asks: the account, container and partition key range lookups, a document
read (not found), document creates, and ACS create-identity-with-token.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from typing import Any

from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl
from azure.core.utils import CaseInsensitiveDict

from tests.azure_transport import fake_connection_string

COSMOS_ENDPOINT = "https://bench.documents.azure.com:443/"
COSMOS_KEY = base64.b64encode(b"bench-cosmos-key-" * 4).decode()
ACS_ENDPOINT = "https://bench.communication.azure.com/"
ACS_CONNECTION_STRING = fake_connection_string(ACS_ENDPOINT.rstrip("/"))

Answer = tuple[int, dict[str, Any] | None, dict[str, str]]


class _NoConnection:
    async def close(self) -> None:
        pass


class _ReadResponse(AsyncHttpResponseImpl):
    """A response already read. Cosmos reads bodies through the legacy sync `body()`, which
    on an async response would start a `read()` coroutine nobody awaits."""

    def body(self) -> bytes:
        return self.content


class CannedTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    """An azure-core async transport whose `answer` method plays the service."""

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        raise NotImplementedError

    async def send(self, request: HttpRequest, **kwargs: Any) -> AsyncHttpResponse:
        url = urllib.parse.urlsplit(request.url)
        # Cosmos still sends azure-core's legacy HttpRequest (`body`), ACS the new one (`content`).
        content = request.content if hasattr(request, "content") else request.body
        status, body, headers = self.answer(
            request.method,
            urllib.parse.unquote(url.path),
            dict(request.headers),
            json.loads(content) if content else None,
        )
        payload = json.dumps(body).encode() if body is not None else b""
        headers = {**headers, "Content-Length": str(len(payload))}
        if body is not None:
            headers["Content-Type"] = "application/json"

        async def stream(**_: Any) -> AsyncIterator[bytes]:
            yield payload

        response = _ReadResponse(
            request=request,
            internal_response=_NoConnection(),
            status_code=status,
            reason="canned",
            content_type=headers.get("Content-Type"),
            headers=CaseInsensitiveDict(headers),
            stream_download_generator=stream,
        )
        await response.read()
        return response

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aexit__(self, *args: object) -> None:
        pass

    async def sleep(self, duration: float) -> None:
        pass


_CONTAINER = re.compile(r"^/dbs/(?P<db>[^/]+)/colls/(?P<coll>[^/]+)/?$")
_PKRANGES = re.compile(r"^/dbs/[^/]+/colls/[^/]+/pkranges/?$")
_DOCS = re.compile(r"^/dbs/[^/]+/colls/[^/]+/docs/?$")
_DOC = re.compile(r"^/dbs/[^/]+/colls/[^/]+/docs/[^/]+/?$")


class FakeCosmosTransport(CannedTransport):
    """A Cosmos DB account where every document read misses and every create succeeds."""

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        session = {"x-ms-session-token": "0:1#1", "x-ms-request-charge": "1"}
        if method == "GET" and path in ("", "/"):
            location = {"name": "local", "databaseAccountEndpoint": COSMOS_ENDPOINT}
            return (
                200,
                {
                    "id": "bench",
                    "writableLocations": [location],
                    "readableLocations": [location],
                    "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
                },
                {},
            )
        if method == "GET" and (match := _CONTAINER.match(path)):
            name = match["coll"]
            return (
                200,
                {
                    "id": name,
                    "_rid": f"rid-{name}",
                    "_self": f"dbs/db/colls/{name}/",
                    "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
                },
                {},
            )
        if method == "GET" and _PKRANGES.match(path):
            if any(k.lower() == "if-none-match" for k in headers):
                return 304, None, {"etag": "1"}
            ranges = [{"id": "0", "minInclusive": "", "maxExclusive": "FF"}]
            return 200, {"PartitionKeyRanges": ranges, "_count": 1}, {"etag": "1"}
        if method == "GET" and _DOC.match(path):
            return 404, {"code": "NotFound", "message": "no such document"}, session
        if method == "POST" and _DOCS.match(path):
            stored = {**body, "_etag": f'"{uuid.uuid4()}"', "_ts": int(time.time())}
            return 201, stored, {**session, "etag": stored["_etag"]}
        return 404, {"code": "NotFound", "message": f"{method} {path} is not played"}, {}


class FakeAcsTransport(CannedTransport):
    """ACS Identity answering create-identity-with-token (the REST API's documented body)."""

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        expires = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
        if method == "POST" and path == "/identities":
            user = f"8:acs:bench_{uuid.uuid4()}"
            return (
                201,
                {"identity": {"id": user}, "accessToken": {"token": "t", "expiresOn": expires}},
                {},
            )
        if method == "POST" and path.endswith("/:issueAccessToken"):
            return 200, {"token": "t", "expiresOn": expires}, {}
        return 404, {"error": {"code": "NotFound", "message": "not played"}}, {}
