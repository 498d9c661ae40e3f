"""The Azure ACS identity adapter, exercised through the real `azure-communication-identity` SDK.

Nothing in the SDK is patched: the adapter's client gets an azure-core transport
(`tests.azure_transport.MockTransport`) that answers from queued replies, the bodies the ACS REST
API documents, and records every request the SDK sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.core.rest import AsyncHttpResponse, HttpRequest

from switchboard.adapters import azure as kit
from switchboard.adapters.acs_azure import AzureIdentityProvider
from switchboard.errors import AcsAccessDenied, DependencyUnavailable
from switchboard.ports import IdentityNotFound, TeamsTokenRejected
from tests.azure_transport import (
    API_VERSION,
    CREATE_IDENTITY_201,
    ENDPOINT,
    EXAMPLE_EXPIRES_ON,
    ISSUE_ACCESS_TOKEN_200,
    USER_ID,
    MockTransport,
    Reply,
    error_body,
    json_response,
)

ACCESS_KEY = base64.b64encode(os.urandom(32)).decode()
CONNECTION_STRING = f"endpoint={ENDPOINT}/;accesskey={ACCESS_KEY}"
NO_RETRIES: dict[str, Any] = {"retry_total": 0}


@pytest.fixture
def transport() -> MockTransport:
    return MockTransport.replying()


@pytest.fixture
async def provider(transport: MockTransport) -> AsyncIterator[AzureIdentityProvider]:
    adapter = AzureIdentityProvider.from_connection_string(
        CONNECTION_STRING, transport=transport, **NO_RETRIES
    )
    yield adapter
    await adapter.close()


@pytest.fixture
def no_secrets_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Everything logged (SDK included, at DEBUG) is free of the key and the token."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage()
        assert ACCESS_KEY not in text
        assert CONNECTION_STRING not in text


async def test_create_user_and_token(
    provider: AzureIdentityProvider, transport: MockTransport, no_secrets_logged: None
) -> None:
    transport.answers.append(Reply(201, CREATE_IDENTITY_201))

    user_id, issued = await provider.create_user_and_token(["chat", "voip"], timedelta(hours=1))

    assert user_id == USER_ID
    assert issued.token == "token"
    assert issued.expires_on == EXAMPLE_EXPIRES_ON
    (sent,) = transport.requests
    assert (sent.method, sent.path) == ("POST", "/identities")
    assert sent.query == {"api-version": [API_VERSION]}
    assert sent.body == {"createTokenWithScopes": ["chat", "voip"], "expiresInMinutes": 60}
    # Signed with the access key (HMAC), as a connection string means.
    assert sent.headers["Authorization"].startswith("HMAC-SHA256 ")
    assert ACCESS_KEY not in json.dumps(sent.headers)


async def test_issue_token(provider: AzureIdentityProvider, transport: MockTransport) -> None:
    transport.answers.append(Reply(200, ISSUE_ACCESS_TOKEN_200))

    issued = await provider.issue_token(
        USER_ID, ["chat", "voip", "chat.join", "chat.join.limited", "voip.join"], timedelta(days=1)
    )

    assert issued.token == "token"
    assert issued.expires_on == EXAMPLE_EXPIRES_ON
    (sent,) = transport.requests
    assert (sent.method, sent.path) == ("POST", f"/identities/{USER_ID}/:issueAccessToken")
    assert sent.query == {"api-version": [API_VERSION]}
    assert sent.body == {
        "scopes": ["chat", "voip", "chat.join", "chat.join.limited", "voip.join"],
        "expiresInMinutes": 1440,
    }


async def test_revoke_tokens(provider: AzureIdentityProvider, transport: MockTransport) -> None:
    transport.answers.append(Reply(204))

    await provider.revoke_tokens(USER_ID)

    (sent,) = transport.requests
    assert (sent.method, sent.path) == ("POST", f"/identities/{USER_ID}/:revokeAccessTokens")
    assert sent.query == {"api-version": [API_VERSION]}


async def test_delete_user(provider: AzureIdentityProvider, transport: MockTransport) -> None:
    transport.answers.append(Reply(204))

    await provider.delete_user(USER_ID)

    (sent,) = transport.requests
    assert (sent.method, sent.path) == ("DELETE", f"/identities/{USER_ID}")
    assert sent.query == {"api-version": [API_VERSION]}


async def test_missing_identity(provider: AzureIdentityProvider, transport: MockTransport) -> None:
    not_found = Reply(404, error_body("IdentityNotFound", "Identity not found."))
    transport.answers.extend([not_found, not_found, not_found])

    with pytest.raises(IdentityNotFound):
        await provider.issue_token(USER_ID, ["chat"], timedelta(hours=1))
    # Already gone is what delete and revoke want.
    await provider.delete_user(USER_ID)
    await provider.revoke_tokens(USER_ID)
    assert [r.method for r in transport.requests] == ["POST", "DELETE", "POST"]


@pytest.mark.parametrize(
    ("headers", "expected_retry_after"),
    [
        ({"Retry-After": "17"}, 17),
        ({"retry-after-ms": "2500"}, 3),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 5),  # in the past: the default
        ({"Retry-After": "86400"}, 300),  # capped
        ({}, 5),
    ],
)
async def test_throttled(
    provider: AzureIdentityProvider,
    transport: MockTransport,
    headers: dict[str, str],
    expected_retry_after: int,
) -> None:
    transport.answers.append(
        Reply(429, error_body("TooManyRequests", "Rate limit exceeded."), headers)
    )

    with pytest.raises(DependencyUnavailable) as raised:
        await provider.issue_token(USER_ID, ["chat"], timedelta(hours=1))

    assert raised.value.dependency == "acs"
    assert raised.value.retry_after == expected_retry_after


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(
    provider: AzureIdentityProvider, transport: MockTransport, status: int
) -> None:
    transport.answers.append(
        Reply(status, error_body("InternalError", "Try again."), {"Retry-After": "9"})
    )

    with pytest.raises(DependencyUnavailable) as raised:
        await provider.create_user_and_token(["chat"], timedelta(hours=1))

    assert raised.value.retry_after == 9


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials(
    provider: AzureIdentityProvider,
    transport: MockTransport,
    caplog: pytest.LogCaptureFixture,
    no_secrets_logged: None,
    status: int,
) -> None:
    transport.answers.append(
        Reply(status, error_body("Denied", "Denied by the resource provider."))
    )

    with pytest.raises(AcsAccessDenied) as raised:
        await provider.create_user_and_token(["chat"], timedelta(hours=1))

    # Nothing the caller can do about it soon: a minute, and the answer names what to grant.
    assert raised.value.retry_after == 60
    assert raised.value.code == "acs_access_denied"
    assert "Communication and Email Service Owner" in raised.value.detail
    assert ACCESS_KEY not in str(raised.value)
    assert raised.value.__cause__ is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert f"HTTP {status}" in message
    assert "code Denied" in message
    assert "ACS_CONNECTION_STRING" in message


async def test_connection_failure(
    provider: AzureIdentityProvider, transport: MockTransport
) -> None:
    transport.answers.append(ServiceRequestError("connection refused"))

    with pytest.raises(DependencyUnavailable) as raised:
        await provider.delete_user(USER_ID)

    assert raised.value.retry_after == 5


async def test_bad_request_is_not_hidden(
    provider: AzureIdentityProvider, transport: MockTransport
) -> None:
    # A 400 means we sent something wrong: a bug to surface, not an outage to retry.
    transport.answers.append(Reply(400, error_body("ValidationError", "Invalid scope.")))

    with pytest.raises(HttpResponseError) as raised:
        await provider.issue_token(USER_ID, ["chat"], timedelta(hours=1))

    assert raised.value.status_code == 400


async def test_unknown_scope_is_refused_before_any_request(
    provider: AzureIdentityProvider, transport: MockTransport
) -> None:
    with pytest.raises(ValueError, match="unknown ACS scopes: teams"):
        await provider.issue_token(USER_ID, ["chat", "teams"], timedelta(hours=1))
    with pytest.raises(ValueError, match="non-empty"):
        await provider.create_user_and_token([], timedelta(hours=1))
    assert transport.requests == []


async def test_default_retries_connection_errors_but_not_throttling() -> None:
    # Connection blips are retried inside the call (for the methods azure-core deems safe to
    # repeat: DELETE here, never the POST that creates an identity); a 429 is handed back at
    # once, so the HTTP caller gets our 503 + Retry-After instead of waiting in an SDK sleep.
    transport = MockTransport.replying(
        ServiceRequestError("connection reset"),
        Reply(204),
        Reply(429, error_body("TooManyRequests", "Slow down."), {"Retry-After": "30"}),
    )
    provider = AzureIdentityProvider.from_connection_string(CONNECTION_STRING, transport=transport)
    try:
        await provider.delete_user(USER_ID)
        assert [r.method for r in transport.requests] == ["DELETE", "DELETE"]

        with pytest.raises(DependencyUnavailable) as raised:
            await provider.issue_token(USER_ID, ["chat"], timedelta(hours=1))
        assert raised.value.retry_after == 30
        assert len(transport.requests) == 3  # the 429 was not retried
        assert 30 not in transport.sleeps
    finally:
        await provider.close()


async def test_sdk_client_is_created_once_and_reused() -> None:
    from azure.communication.identity.aio import CommunicationIdentityClient

    transport = MockTransport.replying(
        Reply(201, CREATE_IDENTITY_201), Reply(200, ISSUE_ACCESS_TOKEN_200), Reply(204)
    )
    created: list[CommunicationIdentityClient] = []

    def make_client() -> CommunicationIdentityClient:
        client = CommunicationIdentityClient.from_connection_string(
            CONNECTION_STRING, transport=transport, retry_total=0
        )
        created.append(client)
        return client

    provider = AzureIdentityProvider(make_client)
    assert created == []  # Nothing is built before the first call.
    user_id, _ = await provider.create_user_and_token(["chat"], timedelta(hours=1))
    await provider.issue_token(user_id, ["chat"], timedelta(hours=1))
    await provider.revoke_tokens(user_id)
    await provider.close()

    assert len(created) == 1
    assert len(transport.requests) == 3


class StaticTokenCredential:
    """A caller-owned async credential, as a managed identity would be."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("entra-access-token", int(datetime.now(UTC).timestamp()) + 3600)

    async def close(self) -> None:
        raise AssertionError("a caller-owned credential is not closed by the provider")

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


async def test_from_endpoint_uses_entra_bearer_tokens() -> None:
    transport = MockTransport.replying(Reply(204))
    credential = StaticTokenCredential()
    provider = AzureIdentityProvider.from_endpoint(
        ENDPOINT, credential, transport=transport, **NO_RETRIES
    )
    try:
        await provider.delete_user(USER_ID)
    finally:
        await provider.close()

    (sent,) = transport.requests
    assert sent.headers["Authorization"] == "Bearer entra-access-token"
    assert credential.scopes == [("https://communication.azure.com//.default",)]


async def test_from_settings_prefers_the_connection_string() -> None:
    transport = MockTransport.replying(Reply(204))
    provider = AzureIdentityProvider.from_settings(
        "https://ignored.communication.azure.com",
        CONNECTION_STRING,
        "client-id",
        transport=transport,
        **NO_RETRIES,
    )
    try:
        await provider.revoke_tokens(USER_ID)
    finally:
        await provider.close()

    (sent,) = transport.requests
    assert sent.headers["Authorization"].startswith("HMAC-SHA256 ")


def test_from_settings_needs_an_endpoint_or_a_connection_string() -> None:
    with pytest.raises(ValueError, match="ACS_ENDPOINT"):
        AzureIdentityProvider.from_settings(None, None, None)


def test_azure_sdks_are_imported_only_at_first_use() -> None:
    # Building the provider (as the runtime does at start-up) must not load any Azure SDK.
    script = (
        "import sys\n"
        "from switchboard.adapters.acs_azure import AzureIdentityProvider\n"
        "AzureIdentityProvider.from_settings('https://x.communication.azure.com', None, 'id')\n"
        "AzureIdentityProvider.from_connection_string("
        "'endpoint=https://x.communication.azure.com/;accesskey=a2V5')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('azure'))\n"
        "assert not loaded, loaded\n"
    )
    repo_root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=repo_root)


# ExchangeTeamsUserAccessToken.json, 200
TEAMS_APP_ID = "2c3e1e83-8fd7-4615-ad2b-b8c1229845ac"
TEAMS_USER_ID = "32c0a5db-05ec-78ea-51ab-3f06b329397e"
EXCHANGE_TEAMS_200 = {
    "token": "CommunicationIdentityAccessToken",
    "expiresOn": "2023-10-10T21:39:39.3244584+00:00",
}


async def test_exchange_teams_token(
    provider: AzureIdentityProvider, transport: MockTransport, no_secrets_logged: None
) -> None:
    transport.answers.append(Reply(200, EXCHANGE_TEAMS_200))

    issued = await provider.exchange_teams_token(
        "AzureActiveDirectoryAccessTokenOfATeamsUser", TEAMS_APP_ID, TEAMS_USER_ID
    )

    assert issued.token == "CommunicationIdentityAccessToken"
    assert issued.expires_on == EXAMPLE_EXPIRES_ON
    (sent,) = transport.requests
    assert (sent.method, sent.path) == ("POST", "/teamsUser/:exchangeAccessToken")
    assert sent.query == {"api-version": [API_VERSION]}
    assert sent.body == {
        "token": "AzureActiveDirectoryAccessTokenOfATeamsUser",
        "appId": TEAMS_APP_ID,
        "userId": TEAMS_USER_ID,
    }


# ACS's answer to an Entra token it does not accept: 401 InvalidAccessToken ("Provided access
# token is not valid.", Azure/azure-sdk-for-js sdk/communication/communication-identity/
# recordings/node/exchange_teams_user_aad_token_for_acs_token_playbacklive/
# recording_throws_an_error_when_attempting_to_exchange_an_invalid_teams_user_aad_token.js);
# a token for another app or user is a 400.
@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "InvalidAccessToken"), (400, "BadRequest"), (401, "InvalidAccessToken")],
)
async def test_refused_teams_token_is_the_callers_problem(
    provider: AzureIdentityProvider, transport: MockTransport, status: int, code: str
) -> None:
    transport.answers.append(Reply(status, error_body(code, "Provided access token is not valid.")))
    with pytest.raises(TeamsTokenRejected, match=code):
        await provider.exchange_teams_token("token", TEAMS_APP_ID, TEAMS_USER_ID)


@pytest.mark.parametrize(("status", "code"), [(401, "Denied"), (403, "Forbidden"), (403, "Denied")])
async def test_teams_exchange_refusing_the_servers_identity_is_a_503_naming_the_grant(
    provider: AzureIdentityProvider,
    transport: MockTransport,
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: str,
) -> None:
    # Issue 18 §7: not "your token was refused" when it is Switchboard's own key or role.
    transport.answers.append(Reply(status, error_body(code, "Denied by the resource provider.")))
    with pytest.raises(AcsAccessDenied) as raised:
        await provider.exchange_teams_token("token", TEAMS_APP_ID, TEAMS_USER_ID)
    assert raised.value.status == 503
    assert "Communication and Email Service Owner" in raised.value.detail
    assert any(
        r.levelno == logging.ERROR and "exchange_teams_token" in r.getMessage()
        for r in caplog.records
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_after_a_429_no_call_reaches_acs_until_its_retry_after_is_over(
    provider: AzureIdentityProvider, transport: MockTransport
) -> None:
    clock = _Clock()
    provider.backoff = kit.Backoff("acs", clock=clock)
    transport.answers.append(
        Reply(429, error_body("TooManyRequests", "slow down"), {"Retry-After": "30"})
    )
    # One request meets the 429; fifty more in the window (any user, any operation) get 503
    # with the remaining wait, and none of them reaches ACS.
    with pytest.raises(DependencyUnavailable) as first:
        await provider.issue_token(USER_ID, ["chat"], timedelta(hours=1))
    assert first.value.retry_after == 30
    clock.now += 12
    for _ in range(25):
        with pytest.raises(DependencyUnavailable) as later:
            await provider.issue_token(USER_ID, ["voip"], timedelta(hours=1))
        assert later.value.retry_after == 18
    for _ in range(25):
        with pytest.raises(DependencyUnavailable):
            await provider.create_user_and_token(["chat"], timedelta(hours=1))
    assert len(transport.requests) == 1
    # The window over: the next call goes out again.
    clock.now += 18
    transport.answers.append(Reply(200, ISSUE_ACCESS_TOKEN_200))
    issued = await provider.issue_token(USER_ID, ["chat"], timedelta(hours=1))
    assert issued.token
    assert len(transport.requests) == 2


async def test_a_transport_that_never_answers_is_a_503_within_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def never(request: HttpRequest) -> AsyncHttpResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    provider = AzureIdentityProvider.from_connection_string(
        CONNECTION_STRING, transport=MockTransport(never), **NO_RETRIES
    )
    provider.call_bound = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DependencyUnavailable) as raised:
        await provider.issue_token(USER_ID, ["chat"], timedelta(hours=1))
    assert loop.time() - started < 2
    assert raised.value.retry_after == kit.TIMEOUT_RETRY_AFTER_SECONDS
    assert any("ACS issue_token gave no answer" in r.getMessage() for r in caplog.records)
    await provider.close()


async def test_throttled_teams_exchange_is_unavailable(
    provider: AzureIdentityProvider, transport: MockTransport
) -> None:
    transport.answers.append(
        Reply(429, error_body("TooManyRequests", "slow down"), {"Retry-After": "11"})
    )
    with pytest.raises(DependencyUnavailable) as caught:
        await provider.exchange_teams_token("token", TEAMS_APP_ID, TEAMS_USER_ID)
    assert caught.value.retry_after == 11


async def test_a_handler_answers_by_route() -> None:
    # The handler form of the transport: one function plays the service, here an ACS resource
    # that knows no identity, so issuing fails and deleting succeeds (already gone).
    async def acs_without_identities(request: HttpRequest) -> AsyncHttpResponse:
        if request.method == "DELETE":
            return json_response(request, 204)
        return json_response(request, 404, error_body("IdentityNotFound", "Identity not found."))

    transport = MockTransport(acs_without_identities)
    provider = AzureIdentityProvider.from_connection_string(
        CONNECTION_STRING, transport=transport, **NO_RETRIES
    )
    try:
        with pytest.raises(IdentityNotFound):
            await provider.issue_token(USER_ID, ["chat"], timedelta(hours=1))
        await provider.delete_user(USER_ID)
    finally:
        await provider.close()
    assert [(r.method, r.path) for r in transport.requests] == [
        ("POST", f"/identities/{USER_ID}/:issueAccessToken"),
        ("DELETE", f"/identities/{USER_ID}"),
    ]


@pytest.mark.parametrize(
    ("client_id", "credential_class"),
    [
        ("00000000-0000-0000-0000-00000000c11d", "ManagedIdentityCredential"),
        (None, "DefaultAzureCredential"),
    ],
)
async def test_from_settings_without_a_connection_string_uses_managed_identity(
    client_id: str | None, credential_class: str
) -> None:
    provider = AzureIdentityProvider.from_settings(ENDPOINT, None, client_id, **NO_RETRIES)
    try:
        provider._sdk_client()  # builds the client and its credential; nothing is sent
        assert provider._owned_credential is not None
        assert type(provider._owned_credential()).__name__ == credential_class
    finally:
        await provider.close()
