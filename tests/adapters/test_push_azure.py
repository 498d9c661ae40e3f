"""The Notification Hubs adapter over its azure-core pipeline, with a fake transport.

Nothing is patched: the adapter's pipeline gets `tests.azure_transport.MockTransport`, which
answers as the Notification Hubs REST reference documents (create or overwrite an installation →
200, patch → 200 or 404, delete → 204, send a template notification → 201; 401 authorization
failure, 403 quota exceeded or message too large, 429 with Retry-After; error bodies are XML
`<Error><Code/><Detail/></Error>`) and records what was sent: method, path, api-version, the
SAS Authorization header, the ServiceBusNotification-* headers and the JSON body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.core.rest import AsyncHttpResponse, HttpRequest

from switchboard.adapters.push_azure import (
    API_VERSION,
    TEMPLATE_NAME,
    AzurePushHub,
    SasPolicy,
    sas_token,
)
from switchboard.errors import DependencyUnavailable, InvalidInput
from switchboard.notification_hubs import ConnectionString
from switchboard.ports import (
    PushInstallation,
    PushInstallationNotFound,
    PushMessage,
    PushRejected,
)
from tests.azure_transport import MockTransport, Reply, json_response

KEY = base64.b64encode(os.urandom(32)).decode()
CONNECTION_STRING = (
    "Endpoint=sb://switchboard-ns.servicebus.windows.net/;"
    f"SharedAccessKeyName=SwitchboardSend;SharedAccessKey={KEY}"
)
HUB_URL = "https://switchboard-ns.servicebus.windows.net/calls"
APNS = PushInstallation("inst-1", "apns", "apns-device-token-secret", "u:abc")
FCM = PushInstallation("inst-2", "fcmv1", "fcm-registration-token-secret", "u:abc")
MESSAGE = PushMessage(
    title="Alice started a call",
    body="in Chess club",
    data={"kind": "clubCall", "clubId": "chess", "groupCallId": "5f9f…"},
)


def hub_error(status: int, detail: str) -> Reply:
    """The hub's error body is XML; the adapter reads only the status and Retry-After."""
    return Reply(status, None, {"Content-Type": "application/xml; charset=utf-8"})


@pytest.fixture
def transport() -> MockTransport:
    return MockTransport.replying()


@pytest.fixture
async def hub(transport: MockTransport) -> AsyncIterator[AzurePushHub]:
    adapter = AzurePushHub.from_connection_string(
        CONNECTION_STRING, "calls", transport=transport, retry_total=0
    )
    yield adapter
    await adapter.close()


@pytest.fixture(autouse=True)
def no_secrets_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage()
        for secret in (KEY, "SharedAccessSignature", "device-token-secret", "token-secret"):
            assert secret not in text


def authorization_is_valid_sas(header: str) -> None:
    assert header.startswith("SharedAccessSignature ")
    fields = dict(
        part.split("=", 1) for part in header.removeprefix("SharedAccessSignature ").split("&")
    )
    assert fields["skn"] == "SwitchboardSend"
    assert fields["sr"] == urllib.parse.quote(HUB_URL, safe="").lower()
    to_sign = f"{fields['sr']}\n{fields['se']}".encode()
    expected = base64.b64encode(hmac.new(KEY.encode(), to_sign, hashlib.sha256).digest())
    assert urllib.parse.unquote(fields["sig"]) == expected.decode()


async def test_put_installation_sends_the_documented_body(
    hub: AzurePushHub, transport: MockTransport
) -> None:
    transport.answers += [Reply(200), Reply(200)]
    await hub.put_installation(APNS)
    await hub.put_installation(FCM)
    apns, fcm = transport.requests
    assert (apns.method, apns.path) == ("PUT", "/calls/installations/inst-1")
    assert apns.query == {"api-version": [API_VERSION]}
    assert apns.headers["Content-Type"] == "application/json"
    authorization_is_valid_sas(apns.headers["Authorization"])
    assert apns.body["installationId"] == "inst-1"
    assert apns.body["platform"] == "apns"
    assert apns.body["pushChannel"] == "apns-device-token-secret"
    assert apns.body["tags"] == ["u:abc"]
    template = json.loads(apns.body["templates"][TEMPLATE_NAME]["body"])
    assert template["aps"]["alert"] == {"title": "$(title)", "body": "$(body)"}
    assert template["groupCallId"] == "$(groupCallId)"
    assert fcm.body["platform"] == "fcmv1"
    fcm_template = json.loads(fcm.body["templates"][TEMPLATE_NAME]["body"])
    assert fcm_template["message"]["notification"]["title"] == "$(title)"
    assert fcm_template["message"]["data"]["clubId"] == "$(clubId)"


async def test_installation_ids_are_escaped_in_the_path(
    hub: AzurePushHub, transport: MockTransport
) -> None:
    transport.answers.append(Reply(204))
    await hub.delete_installation("a b%c")
    assert transport.requests[0].path == "/calls/installations/a b%c"  # unquoted by the mock
    assert transport.requests[0].method == "DELETE"


async def test_patch_replaces_the_push_channel_with_a_json_patch(
    hub: AzurePushHub, transport: MockTransport
) -> None:
    transport.answers += [Reply(200), hub_error(404, "Installation not found")]
    await hub.update_push_channel("inst-1", "new-token-secret")
    sent = transport.requests[0]
    assert sent.method == "PATCH"
    assert sent.headers["Content-Type"] == "application/json-patch+json"
    assert sent.body == [{"op": "replace", "path": "/pushChannel", "value": "new-token-secret"}]
    with pytest.raises(PushInstallationNotFound):
        await hub.update_push_channel("gone", "new-token-secret")


async def test_delete_of_a_missing_installation_is_success(
    hub: AzurePushHub, transport: MockTransport
) -> None:
    transport.answers += [Reply(204), hub_error(404, "not found")]
    await hub.delete_installation("inst-1")
    await hub.delete_installation("inst-1")
    assert [r.method for r in transport.requests] == ["DELETE", "DELETE"]


async def test_template_send_to_an_or_of_tags(hub: AzurePushHub, transport: MockTransport) -> None:
    transport.answers.append(Reply(201))
    await hub.send(MESSAGE, ["u:1", "u:2", "u:1"])
    sent = transport.requests[0]
    assert (sent.method, sent.path) == ("POST", "/calls/messages/")
    assert sent.headers["ServiceBusNotification-Format"] == "template"
    assert sent.headers["ServiceBusNotification-Tags"] == "u:1 || u:2"
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"
    authorization_is_valid_sas(sent.headers["Authorization"])
    # Flat string properties; every template property present (empty when unused).
    assert sent.body == {
        "title": "Alice started a call",
        "body": "in Chess club",
        "kind": "clubCall",
        "clubId": "chess",
        "groupCallId": "5f9f…",
        "startedBy": "",
        "startedByName": "",
    }
    assert all(isinstance(v, str) for v in sent.body.values())


@pytest.mark.parametrize("tags", [[], [f"u:{i}" for i in range(21)], "u:1"])
async def test_a_send_names_one_to_twenty_tags(
    hub: AzurePushHub, transport: MockTransport, tags: Any
) -> None:
    with pytest.raises(ValueError, match="1 to 20"):
        await hub.send(MESSAGE, tags)
    assert transport.requests == []


async def test_unknown_data_keys_are_refused(hub: AzurePushHub, transport: MockTransport) -> None:
    with pytest.raises(ValueError, match="templates"):
        await hub.send(PushMessage("t", "b", {"token": "x"}), ["u:1"])
    assert transport.requests == []


async def test_401_is_dependency_unavailable_and_logged_as_credentials(
    hub: AzurePushHub, transport: MockTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport.answers.append(hub_error(401, "ExpiredToken"))
    with pytest.raises(DependencyUnavailable) as raised:
        await hub.send(MESSAGE, ["u:1"])
    assert raised.value.dependency == "push"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert "NOTIFICATION_HUB_CONNECTION_STRING" in errors[0]


@pytest.mark.parametrize("status", [403, 413])
async def test_quota_exceeded_or_too_large_is_rejected_for_good(
    hub: AzurePushHub, transport: MockTransport, status: int
) -> None:
    transport.answers.append(hub_error(status, "Quota exceeded"))
    with pytest.raises(PushRejected):
        await hub.send(MESSAGE, ["u:1"])
    transport.answers.append(hub_error(status, "Quota exceeded"))
    with pytest.raises(PushRejected):
        await hub.put_installation(APNS)


async def test_429_carries_the_hubs_retry_after(
    hub: AzurePushHub, transport: MockTransport
) -> None:
    transport.answers.append(Reply(429, None, {"Retry-After": "17"}))
    with pytest.raises(DependencyUnavailable) as raised:
        await hub.send(MESSAGE, ["u:1"])
    assert raised.value.retry_after == 17


async def test_5xx_and_connection_failures_are_unavailable(
    hub: AzurePushHub, transport: MockTransport
) -> None:
    transport.answers += [Reply(503), ServiceRequestError("refused")]
    with pytest.raises(DependencyUnavailable):
        await hub.put_installation(APNS)
    with pytest.raises(DependencyUnavailable):
        await hub.delete_installation("inst-1")


async def test_400_on_a_send_is_our_bug_and_propagates(
    hub: AzurePushHub, transport: MockTransport
) -> None:
    transport.answers.append(hub_error(400, "Bad request"))
    with pytest.raises(HttpResponseError):
        await hub.send(MESSAGE, ["u:abc"])


async def test_400_on_an_installation_is_the_callers_push_channel(
    hub: AzurePushHub, transport: MockTransport
) -> None:
    """The hub validates the push channel it is given (the caller's): its 400 is invalid input."""
    transport.answers += [hub_error(400, "Bad request"), hub_error(400, "Bad request")]
    with pytest.raises(InvalidInput) as caught:
        await hub.put_installation(APNS)
    assert caught.value.field == "pushChannel"
    assert "device-token-secret" not in caught.value.detail
    with pytest.raises(InvalidInput):
        await hub.update_push_channel("inst-1", "apns-device-token-secret")


async def test_idempotent_calls_are_retried_on_connection_failures_sends_are_not(
    transport: MockTransport,
) -> None:
    adapter = AzurePushHub.from_connection_string(CONNECTION_STRING, "calls", transport=transport)
    transport.answers += [ServiceRequestError("reset"), Reply(200)]
    await adapter.put_installation(APNS)
    assert len(transport.requests) == 2
    # Each attempt was signed (the SAS policy runs inside the retry loop).
    assert all(r.headers["Authorization"] for r in transport.requests)
    # A send is a POST: retrying it after a broken connection could push twice.
    transport.answers += [ServiceRequestError("reset"), Reply(201)]
    with pytest.raises(DependencyUnavailable):
        await adapter.send(MESSAGE, ["u:1"])
    assert len(transport.requests) == 3
    await adapter.close()


async def test_the_client_is_built_once_and_reused() -> None:
    seen: list[HttpRequest] = []

    def handler(request: HttpRequest) -> AsyncHttpResponse:
        seen.append(request)
        return json_response(request, 201)

    adapter = AzurePushHub.from_connection_string(
        CONNECTION_STRING, "calls", transport=MockTransport(handler)
    )
    await adapter.send(MESSAGE, ["u:1"])
    first = adapter._pipeline()
    await adapter.send(MESSAGE, ["u:2"])
    assert adapter._pipeline() is first
    assert len(seen) == 2
    await adapter.close()


def test_sas_token_is_cached_and_renewed_before_expiry() -> None:
    now = [1_000_000.0]
    policy = SasPolicy(HUB_URL, "SwitchboardSend", KEY, clock=lambda: now[0])
    first = policy.token()
    now[0] += 60
    assert policy.token() == first
    now[0] += 3600 - 300
    assert policy.token() != first
    expiry = 1_000_000 + 60 + 3600 - 300 + 3600
    assert policy.token() == sas_token(HUB_URL, "SwitchboardSend", KEY, expiry)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Send",
        "SharedAccessKeyName=Send;SharedAccessKey=abc",
        "Endpoint=ftp://ns/;SharedAccessKeyName=Send;SharedAccessKey=abc",
    ],
)
def test_bad_connection_strings_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(ValueError, match="connection string") as raised:
        ConnectionString.parse(text)
    assert "abc" not in str(raised.value)


def test_connection_string_parts() -> None:
    parsed = ConnectionString.parse(CONNECTION_STRING)
    assert parsed.endpoint == "https://switchboard-ns.servicebus.windows.net/"
    assert parsed.namespace == "switchboard-ns"
    assert parsed.key_name == "SwitchboardSend"
