"""The Azure chat adapter, exercised through the real `azure-communication-chat` SDK.

Nothing in the SDK is patched: the adapter's clients get an azure-core transport
(`tests.azure_transport.MockTransport`) answering with the bodies the ACS Chat REST API documents
for api-version 2024-03-07 (the SDK 1.3.0 default), from Azure/azure-rest-api-specs,
specification/communication/data-plane/Chat/stable/2024-03-07/examples/:
Threads_CreateChatThreadWithIdempotencyToken.json, Participants_AddChatParticipants.json,
Participants_RemoveChatParticipant.json, Participants_ListChatParticipantsWithPageSize.json,
Threads_DeleteChatThread.json (and their documented 401/429 error bodies). Each test checks the
method, path and body the SDK sent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from switchboard.adapters.acs_local import LocalIdentityIssuer
from switchboard.adapters.chat_azure import AzureChatProvider
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.ports import ChatParticipant, ChatThreadFull, ChatThreadNotFound, IssuedToken
from switchboard.services.chat_identity import ChatServiceIdentity
from tests.azure_transport import MockTransport, Reply, error_body

ENDPOINT = "https://contoso.westus.communications.azure.com"
API_VERSION = "2024-03-07"
SERVICE_USER = "8:acs:8540c0de-899f-5cce-acb5-3ec493af3800_c94ff260-162d-46d6-94fd-e79f4d213715"
ALEX = "8:acs:8540c0de-899f-5cce-acb5-3ec493af3800_0e59221d-0c1d-46ae-9544-c963ce56c10b"
PETER = "8:acs:8540c0de-899f-5cce-acb5-3ec493af3800_f13a9208-0bb8-45c0-916c-f3ed922728ce"
THREAD_ID = "19:uni01_zbnh3nt2dfuffezc3sox7dog7wfhk6y5qe2rwlnfhlhdzirihdpq@thread.v2"
IDEMPOTENCY_TOKEN = "35dd6e71-251b-5e29-8376-ba93d09c3fbf"


def identifier(raw_id: str) -> dict[str, Any]:
    return {"rawId": raw_id, "communicationUser": {"id": raw_id}}


# Threads_CreateChatThreadWithIdempotencyToken.json, 201 (invalidParticipants left out: the
# participants it names are not ours).
CREATE_THREAD_201 = {
    "chatThread": {
        "id": THREAD_ID,
        "topic": "Lunch",
        "createdOn": "2020-06-06T05:55:41.6460000Z",
        "createdByCommunicationIdentifier": identifier(SERVICE_USER),
    }
}
# Participants_AddChatParticipants.json, 201, when every participant was added.
ADD_PARTICIPANTS_201: dict[str, Any] = {}
UNAUTHORIZED_401 = error_body("Unauthorized", "Request is not authorized.")
TOO_MANY_429 = error_body("TooManyRequests", "Rate limit exceeded.")
NOT_FOUND_404 = error_body("NotFound", "Thread not found.")


def acs_token(expires_in: timedelta) -> IssuedToken:
    """A JWT shaped as ACS tokens are (the SDK's credential reads `exp` from it)."""
    expires = datetime.now(UTC) + expires_in
    token = jwt.encode({"skypeid": "acs:x", "exp": int(expires.timestamp())}, "k" * 32, "HS256")
    return IssuedToken(token=token, expires_on=expires)


class TokenSource:
    """Counts the tokens minted for the service identity."""

    def __init__(self, *lifetimes: timedelta) -> None:
        self.lifetimes = list(lifetimes) or [timedelta(hours=24)]
        self.minted: list[IssuedToken] = []

    async def __call__(self) -> tuple[str, IssuedToken]:
        lifetime = self.lifetimes[min(len(self.minted), len(self.lifetimes) - 1)]
        issued = acs_token(lifetime)
        self.minted.append(issued)
        return SERVICE_USER, issued


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def transport() -> MockTransport:
    return MockTransport.replying()


@pytest.fixture
def tokens() -> TokenSource:
    return TokenSource()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def provider(
    transport: MockTransport, tokens: TokenSource, sleeps: Sleeps
) -> AsyncIterator[AzureChatProvider]:
    adapter = AzureChatProvider(ENDPOINT, tokens, sleep=sleeps, transport=transport, retry_total=0)
    yield adapter
    await adapter.close()


def bearer(transport: MockTransport, index: int = -1) -> str:
    return transport.requests[index].headers["Authorization"].removeprefix("Bearer ")


async def test_create_thread_sends_topic_participants_and_idempotency_token(
    provider: AzureChatProvider, transport: MockTransport, tokens: TokenSource
) -> None:
    transport.answers.append(Reply(201, CREATE_THREAD_201))

    thread_id = await provider.create_thread(
        "Lunch",
        [ChatParticipant(ALEX, "Alex"), ChatParticipant(PETER, "Peter")],
        idempotency_token=IDEMPOTENCY_TOKEN,
    )

    assert thread_id == THREAD_ID
    sent = transport.requests[0]
    assert (sent.method, sent.path) == ("POST", "/chat/threads")
    assert sent.query["api-version"] == [API_VERSION]
    assert sent.headers["repeatability-request-id"] == IDEMPOTENCY_TOKEN
    assert sent.body == {
        "topic": "Lunch",
        "participants": [
            {"communicationIdentifier": identifier(ALEX), "displayName": "Alex"},
            {"communicationIdentifier": identifier(PETER), "displayName": "Peter"},
        ],
    }
    assert bearer(transport) == tokens.minted[0].token


async def test_add_participants(provider: AzureChatProvider, transport: MockTransport) -> None:
    transport.answers.append(Reply(201, ADD_PARTICIPANTS_201))

    await provider.add_participants(THREAD_ID, [ChatParticipant(PETER, "Peter")])

    sent = transport.requests[0]
    assert (sent.method, sent.path) == ("POST", f"/chat/threads/{THREAD_ID}/participants/:add")
    assert sent.query["api-version"] == [API_VERSION]
    assert sent.body == {
        "participants": [{"communicationIdentifier": identifier(PETER), "displayName": "Peter"}]
    }


async def test_add_to_a_missing_thread_is_thread_not_found(
    provider: AzureChatProvider, transport: MockTransport
) -> None:
    transport.answers.append(Reply(404, NOT_FOUND_404))

    with pytest.raises(ChatThreadNotFound):
        await provider.add_participants(THREAD_ID, [ChatParticipant(PETER, "Peter")])


async def test_add_past_the_cap_is_thread_full(
    provider: AzureChatProvider, transport: MockTransport
) -> None:
    transport.answers.append(Reply(400, error_body("BadRequest", "Bad request")))

    with pytest.raises(ChatThreadFull):
        await provider.add_participants(THREAD_ID, [ChatParticipant(PETER, "Peter")])


async def test_more_than_200_per_add_is_refused_before_any_request(
    provider: AzureChatProvider, transport: MockTransport
) -> None:
    many = [ChatParticipant(f"8:acs:r_{i}", "x") for i in range(201)]
    with pytest.raises(ValueError, match="at most 200"):
        await provider.add_participants(THREAD_ID, many)
    assert transport.requests == []


async def test_remove_participant(provider: AzureChatProvider, transport: MockTransport) -> None:
    transport.answers.extend([Reply(204), Reply(404, NOT_FOUND_404)])

    await provider.remove_participant(THREAD_ID, ALEX)
    await provider.remove_participant(THREAD_ID, ALEX)  # already gone: fine

    sent = transport.requests[0]
    assert (sent.method, sent.path) == (
        "POST",
        f"/chat/threads/{THREAD_ID}/participants/:remove",
    )
    assert sent.body == identifier(ALEX)


def _participant(raw_id: str, name: str) -> dict[str, Any]:
    return {
        "communicationIdentifier": identifier(raw_id),
        "displayName": name,
        "shareHistoryTime": "2020-06-06T05:55:41Z",
    }


# Participants_ListChatParticipantsWithPageSize.json, 200: a page with a `nextLink` (its first
# participant, c94ff260…, is the service identity here), then a last page without one.
LIST_PAGE_1 = {
    "value": [_participant(SERVICE_USER, "Jane"), _participant(ALEX, "Alex")],
    "nextLink": f"{ENDPOINT}/chat/threads/{THREAD_ID}/participants"
    "?skip=2&maxPageSize=2&api-version=2024-03-07",
}
LIST_PAGE_2 = {"value": [_participant(PETER, "Peter")]}


async def test_list_participants_follows_every_page_and_leaves_the_service_identity_out(
    provider: AzureChatProvider, transport: MockTransport
) -> None:
    transport.answers.extend([Reply(200, LIST_PAGE_1), Reply(200, LIST_PAGE_2)])

    present = await provider.list_participants(THREAD_ID)

    assert present == sorted([ALEX, PETER])
    first, second = transport.requests
    assert (first.method, first.path) == ("GET", f"/chat/threads/{THREAD_ID}/participants")
    assert first.query["maxPageSize"] == ["200"]
    assert first.query["api-version"] == [API_VERSION]
    assert (second.method, second.query["skip"]) == ("GET", ["2"])


async def test_list_participants_of_a_missing_thread_is_thread_not_found(
    provider: AzureChatProvider, transport: MockTransport
) -> None:
    transport.answers.append(Reply(404, NOT_FOUND_404))
    with pytest.raises(ChatThreadNotFound):
        await provider.list_participants(THREAD_ID)


async def test_delete_thread(provider: AzureChatProvider, transport: MockTransport) -> None:
    transport.answers.extend([Reply(204), Reply(404, NOT_FOUND_404)])

    await provider.delete_thread(THREAD_ID)
    await provider.delete_thread(THREAD_ID)  # already gone: fine

    sent = transport.requests[0]
    assert (sent.method, sent.path) == ("DELETE", f"/chat/threads/{THREAD_ID}")
    assert sent.query["api-version"] == [API_VERSION]


async def test_one_token_serves_many_calls(
    provider: AzureChatProvider, transport: MockTransport, tokens: TokenSource
) -> None:
    transport.answers.extend([Reply(204), Reply(204), Reply(201, CREATE_THREAD_201)])

    await provider.delete_thread(THREAD_ID)
    await provider.remove_participant(THREAD_ID, ALEX)
    await provider.create_thread("Lunch", [], idempotency_token=IDEMPOTENCY_TOKEN)

    assert len(tokens.minted) == 1
    assert {bearer(transport, i) for i in range(3)} == {tokens.minted[0].token}


async def test_a_token_about_to_expire_is_refreshed_before_use(
    transport: MockTransport, sleeps: Sleeps
) -> None:
    tokens = TokenSource(timedelta(seconds=60), timedelta(hours=24))
    provider = AzureChatProvider(ENDPOINT, tokens, sleep=sleeps, transport=transport)
    transport.answers.extend([Reply(204), Reply(204)])
    try:
        await provider.delete_thread(THREAD_ID)
        await provider.delete_thread(THREAD_ID)
    finally:
        await provider.close()

    # The first token expires within the SDK's refresh window: the refresher minted the next one,
    # and both requests carried it.
    assert len(tokens.minted) == 2
    assert bearer(transport, 0) == bearer(transport, 1) == tokens.minted[1].token


async def test_429_is_waited_out_inside_the_budget(
    provider: AzureChatProvider, transport: MockTransport, sleeps: Sleeps
) -> None:
    transport.answers.extend(
        [Reply(429, TOO_MANY_429, {"Retry-After": "3"}), Reply(201, CREATE_THREAD_201)]
    )

    thread_id = await provider.create_thread("Lunch", [], idempotency_token=IDEMPOTENCY_TOKEN)

    assert thread_id == THREAD_ID
    assert sleeps.waits == [3]
    # The retry repeats the idempotency token: ACS returns the first thread, never a second.
    assert [r.headers["repeatability-request-id"] for r in transport.requests] == [
        IDEMPOTENCY_TOKEN,
        IDEMPOTENCY_TOKEN,
    ]


async def test_429_past_the_budget_is_503_with_retry_after(
    provider: AzureChatProvider, transport: MockTransport, sleeps: Sleeps
) -> None:
    transport.answers.extend(
        [
            Reply(429, TOO_MANY_429, {"Retry-After": "6"}),
            Reply(429, TOO_MANY_429, {"Retry-After": "6"}),
        ]
    )

    with pytest.raises(DependencyUnavailable) as raised:
        await provider.create_thread("Lunch", [], idempotency_token=IDEMPOTENCY_TOKEN)

    assert raised.value.dependency == "chat"
    assert raised.value.retry_after == 6
    assert sleeps.waits == [6]  # 6 fits in the 10 s budget; a second 6 would not
    assert len(transport.requests) == 2


async def test_401_is_503_logged_and_the_next_call_mints_a_new_token(
    provider: AzureChatProvider,
    transport: MockTransport,
    tokens: TokenSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport.answers.extend([Reply(401, UNAUTHORIZED_401), Reply(204)])

    with pytest.raises(DependencyUnavailable):
        await provider.delete_thread(THREAD_ID)
    await provider.delete_thread(THREAD_ID)

    assert len(tokens.minted) == 2
    assert bearer(transport, 1) == tokens.minted[1].token
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "refused" in errors[0].getMessage()
    for record in caplog.records:
        assert all(t.token not in record.getMessage() for t in tokens.minted)


async def test_nothing_is_minted_before_the_first_operation(
    transport: MockTransport, tokens: TokenSource, sleeps: Sleeps
) -> None:
    provider = AzureChatProvider(ENDPOINT, tokens, sleep=sleeps, transport=transport)
    await provider.close()
    assert tokens.minted == []
    assert transport.requests == []


async def test_the_service_identity_is_made_once_and_acts_in_every_call(tmp_path: Path) -> None:
    """The runtime's wiring: the adapter's tokens come from ChatServiceIdentity, which creates
    the controller's ACS user once (kept in `system`) and mints chat tokens for it."""
    store = SqliteStore(tmp_path / "s.sqlite")
    issuer = LocalIdentityIssuer(tmp_path)
    identity = ChatServiceIdentity(store, issuer)
    transport = MockTransport.replying(Reply(201, CREATE_THREAD_201), Reply(204))
    provider = AzureChatProvider(ENDPOINT, identity.token, transport=transport)
    try:
        await provider.create_thread("Lunch", [], idempotency_token=IDEMPOTENCY_TOKEN)
        await provider.delete_thread(THREAD_ID)
        service_user = await identity.communication_user_id()
        assert service_user is not None
        token = bearer(transport, 0)
        assert bearer(transport, 1) == token
        assert issuer.verify_token(token)["sub"] == service_user
        assert issuer.verify_token(token)["acsScope"] == "chat"
    finally:
        await provider.close()
        await store.close()
