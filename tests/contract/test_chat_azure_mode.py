"""Chat on the Azure code path, in process: Cosmos (the Cosmos-protocol server), ACS Identity and
ACS Chat through their SDKs over canned transports (the REST APIs' documented bodies), `jwt`
callers. Two friends open their direct thread: the controller's service identity is created once
through the identity port and kept in Cosmos, and its chat token is the one every Chat call
carries; a second call from the other side calls neither ACS service."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from switchboard.adapters.chat_azure import AzureChatProvider
from switchboard.runtime import Runtime, set_runtime
from switchboard.services.chat_identity import ChatServiceIdentity
from tests.azure_transport import ENDPOINT, MockTransport, Reply
from tests.conftest import Client
from tests.contract.test_azure_mode import AzureWorld, azure  # noqa: F401 (the fixture)

pytestmark = pytest.mark.cosmos

THREAD_ID = "19:uni01_zbnh3nt2dfuffezc3sox7dog7wfhk6y5qe2rwlnfhlhdzirihdpq@thread.v2"
RESOURCE = "8:acs:2dee53b4-368b-45b4-ab52-8493fb117652"


def identity_created(suffix: str) -> Reply:
    """CreateIdentity.json's 201, for a distinct identity, with a JWT-shaped token (the Chat
    SDK's credential reads its `exp`)."""
    expires = datetime.now(UTC) + timedelta(hours=24)
    token = jwt.encode({"skypeid": suffix, "exp": int(expires.timestamp())}, "k" * 32, "HS256")
    return Reply(
        201,
        {
            "identity": {"id": f"{RESOURCE}_{suffix}"},
            "accessToken": {"token": token, "expiresOn": expires.isoformat()},
        },
    )


def thread_created(creator: str) -> dict[str, Any]:
    """Threads_CreateChatThreadWithIdempotencyToken.json's 201 body."""
    return {
        "chatThread": {
            "id": THREAD_ID,
            "topic": "Alice-Oid & Bob-Oid",
            "createdOn": "2020-06-06T05:55:41.6460000Z",
            "createdByCommunicationIdentifier": {
                "rawId": creator,
                "communicationUser": {"id": creator},
            },
        }
    }


@dataclasses.dataclass
class ChatWorld:
    azure: AzureWorld
    client: Client
    chat: MockTransport


@pytest.fixture
async def chat_world(azure: AzureWorld) -> AsyncIterator[ChatWorld]:  # noqa: F811
    rt = azure.client.runtime
    transport = MockTransport()
    provider = AzureChatProvider(
        ENDPOINT,
        ChatServiceIdentity(rt.adapters.store, rt.adapters.identity_provider).token,
        transport=transport,
        retry_total=0,
    )
    chat_rt = Runtime(rt.settings, dataclasses.replace(rt.adapters, chat_provider=provider))
    set_runtime(chat_rt)
    yield ChatWorld(azure, Client(chat_rt), transport)
    await provider.close()  # the azure fixture closes the rest


async def test_friends_open_their_thread_on_azure_adapters(chat_world: ChatWorld) -> None:
    client, acs, chat = chat_world.client, chat_world.azure.acs, chat_world.chat
    alice, bob = chat_world.azure.caller("alice-oid"), chat_world.azure.caller("bob-oid")
    for who in (alice, bob):
        assert (await client.request("GET", "/api/me", headers=who)).status == 200
    assert (await client.request("PUT", "/api/friends/bob-oid", headers=alice)).status == 200
    assert (await client.request("PUT", "/api/friends/alice-oid", headers=bob)).status == 200

    # Neither has asked for a token yet: each gets an ACS identity now; then the service identity.
    acs.answers.extend([identity_created("a"), identity_created("b"), identity_created("svc")])
    chat.answers.append(Reply(201, thread_created(f"{RESOURCE}_svc")))
    opened = await client.request("PUT", "/api/friends/bob-oid/thread", headers=alice)

    assert opened.status == 200, opened.body
    assert opened.json()["threadId"] == THREAD_ID
    [create] = chat.requests
    assert (create.method, create.path) == ("POST", "/chat/threads")
    assert create.headers["repeatability-request-id"]
    assert [p["communicationIdentifier"]["rawId"] for p in create.body["participants"]] == [
        f"{RESOURCE}_a",
        f"{RESOURCE}_b",
    ]
    service_token = jwt.decode(
        create.headers["Authorization"].removeprefix("Bearer "),
        options={"verify_signature": False},
    )
    assert service_token["skypeid"] == "svc"
    kept = await chat_world.azure.store.read(
        "system", "chat-service-identity", "chat-service-identity"
    )
    assert kept is not None
    assert kept["communicationUserId"] == f"{RESOURCE}_svc"
    assert len(acs.requests) == 3

    again = await client.request("PUT", "/api/friends/alice-oid/thread", headers=bob)
    listed = await client.request("GET", "/api/threads", headers=bob)

    assert again.json()["threadId"] == THREAD_ID
    assert [t["threadId"] for t in listed.json()["items"]] == [THREAD_ID]
    assert len(acs.requests) == 3  # no identity call, no token minted
    assert len(chat.requests) == 1
