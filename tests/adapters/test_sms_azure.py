"""The ACS SMS adapter, exercised through the real `azure-communication-sms` SDK over
`tests.azure_transport.MockTransport`, answering with the bodies the SMS REST API documents
(Azure/azure-rest-api-specs, specification/communication/data-plane/Sms/stable/2021-03-07,
examples/send.json: 202 with one result per recipient, some refused; errors as
CommunicationErrorResponse). Nothing in the SDK is patched."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from switchboard.adapters.sms_azure import AzureSmsSender
from switchboard.errors import DependencyUnavailable
from switchboard.runtime import build_sms_sender
from switchboard.settings import Settings
from tests.azure_transport import ENDPOINT, MockTransport, Reply, error_body

ACCESS_KEY = base64.b64encode(os.urandom(32)).decode()
CONNECTION_STRING = f"endpoint={ENDPOINT}/;accesskey={ACCESS_KEY}"
SENDER = "+18001110000"
TO = "+11234567890"
NO_RETRIES: dict[str, Any] = {"retry_total": 0}

# examples/send.json (2021-03-07), the 202 answer's first (accepted) and third (refused) results.
ACCEPTED = {
    "to": TO,
    "messageId": "Outgoing_20200610203725bfd4ba70-70bf-4f77-925d-c0bdb5161bb3",
    "httpStatusCode": 202,
    "successful": True,
}
REFUSED = {
    "to": "+112345678901",
    "httpStatusCode": 400,
    "errorMessage": "Invalid To phone number format.",
    "successful": False,
}
UNAVAILABLE = {
    "to": TO,
    "messageId": "Outgoing_2020061020025100d1-d07e-4b19-b25d-13525d552822",
    "httpStatusCode": 503,
    "errorMessage": "ServiceUnavailable",
    "successful": False,
}


@pytest.fixture
def transport() -> MockTransport:
    return MockTransport.replying()


@pytest.fixture
async def sender(transport: MockTransport) -> AsyncIterator[AzureSmsSender]:
    adapter = AzureSmsSender.from_settings(
        SENDER,
        endpoint=None,
        connection_string=CONNECTION_STRING,
        managed_identity_client_id=None,
        transport=transport,
        **NO_RETRIES,
    )
    yield adapter
    await adapter.close()


async def test_send_asks_for_a_delivery_report_with_the_purpose_as_tag(
    sender: AzureSmsSender, transport: MockTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport.answers.append(Reply(202, {"value": [ACCEPTED]}))

    result = await sender.send(TO, "Your code is 123456", tag="verification")

    assert result.accepted
    assert result.message_id == ACCEPTED["messageId"]
    assert result.status_code == 202
    [sent] = transport.requests
    assert sent.method == "POST"
    assert sent.path == "/sms"
    assert sent.query["api-version"] == ["2021-03-07"]
    assert sent.body["from"] == SENDER
    assert [r["to"] for r in sent.body["smsRecipients"]] == [TO]
    assert sent.body["message"] == "Your code is 123456"
    assert sent.body["smsSendOptions"] == {"enableDeliveryReport": True, "tag": "verification"}
    assert sent.headers["Authorization"].startswith("HMAC-SHA256")
    for record in caplog.records:
        assert ACCESS_KEY not in record.getMessage()
        assert TO not in record.getMessage()


@pytest.mark.parametrize(
    ("item", "status", "error"),
    [(REFUSED, 400, "Invalid To phone number format."), (UNAVAILABLE, 503, "ServiceUnavailable")],
)
async def test_a_refused_recipient_is_a_failed_message_not_an_exception(
    sender: AzureSmsSender,
    transport: MockTransport,
    caplog: pytest.LogCaptureFixture,
    item: dict[str, Any],
    status: int,
    error: str,
) -> None:
    transport.answers.append(Reply(202, {"value": [item]}))
    result = await sender.send(TO, "hello", tag="invite")
    assert not result.accepted
    assert result.status_code == status
    assert result.error == error
    assert result.message_id == item.get("messageId")
    assert "refused a recipient" in caplog.text
    assert TO not in caplog.text


async def test_throttling_is_503_with_the_services_retry_after(
    sender: AzureSmsSender, transport: MockTransport
) -> None:
    transport.answers.append(
        Reply(429, error_body("TooManyRequests", "Rate limit"), {"Retry-After": "17"})
    )
    with pytest.raises(DependencyUnavailable) as raised:
        await sender.send(TO, "hello", tag="invite")
    assert raised.value.dependency == "sms"
    assert raised.value.retry_after == 17
    assert transport.sleeps == []  # surfaced at once, never slept on


async def test_refused_credentials_are_503_and_one_error_line(
    sender: AzureSmsSender, transport: MockTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport.answers.append(Reply(401, error_body("Unauthorized", "Denied")))
    with pytest.raises(DependencyUnavailable):
        await sender.send(TO, "hello", tag="invite")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "ACS_CONNECTION_STRING" in errors[0].getMessage()
    assert ACCESS_KEY not in caplog.text


async def test_server_errors_and_refused_connections_are_503(
    sender: AzureSmsSender, transport: MockTransport
) -> None:
    transport.answers.append(Reply(500, error_body("InternalError", "boom")))
    with pytest.raises(DependencyUnavailable):
        await sender.send(TO, "hello", tag="invite")
    transport.answers.append(ServiceRequestError("connection refused"))
    with pytest.raises(DependencyUnavailable):
        await sender.send(TO, "hello", tag="invite")


async def test_the_client_is_created_once(sender: AzureSmsSender, transport: MockTransport) -> None:
    transport.answers.extend([Reply(202, {"value": [ACCEPTED]}), Reply(202, {"value": [ACCEPTED]})])
    await sender.send(TO, "a", tag="invite")
    client = sender._client
    await sender.send(TO, "b", tag="invite")
    assert sender._client is client
    assert len(transport.requests) == 2


def test_settings_choose_the_sender(tmp_path: Any) -> None:
    acs = {"ACS_CONNECTION_STRING": CONNECTION_STRING}
    azure_sms = build_sms_sender(Settings.from_environ({**acs, "SMS_FROM": SENDER}))
    assert isinstance(azure_sms, AzureSmsSender)
    assert azure_sms.sender == SENDER
    in_azure = {
        **acs,
        "WEBSITE_INSTANCE_ID": "x",
        "SWITCHBOARD_STORE": "cosmos",
        "COSMOS_ENDPOINT": "https://c.documents.azure.com",
        "AUTH_MODE": "jwt",
        "AUTH_ISSUER": "https://login.example/",
        "AUTH_AUDIENCE": "api",
    }
    # In Azure without SMS_FROM: no sender at all, never the local outbox.
    assert build_sms_sender(Settings.from_environ(in_azure)) is None
    with_identity = build_sms_sender(
        Settings.from_environ(
            {**in_azure, "ACS_CONNECTION_STRING": "", "ACS_ENDPOINT": ENDPOINT, "SMS_FROM": SENDER}
        )
    )
    assert isinstance(with_identity, AzureSmsSender)
