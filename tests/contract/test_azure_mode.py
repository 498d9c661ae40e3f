"""The Azure code path behind the real handlers, in process: settings as a deployment sets them,
the Cosmos store against the Cosmos-protocol server, the ACS adapter through its SDK over a
canned transport (the REST API's documented bodies), and `jwt` caller auth."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import jwt
import pytest
from azure.core.rest import AsyncHttpResponse, HttpRequest
from cryptography.hazmat.primitives.asymmetric import rsa

from switchboard.adapters.acs_azure import AzureIdentityProvider
from switchboard.adapters.cosmos_store import CosmosStore, create_database_and_containers
from switchboard.adapters.push_azure import AzurePushHub
from switchboard.auth import BearerAuthenticator, StaticKeySource, TokenVerifier
from switchboard.runtime import (
    Adapters,
    Runtime,
    build_identity_provider,
    build_push_sender,
    build_store,
    set_runtime,
)
from switchboard.settings import Settings
from tests.azure_transport import (
    CREATE_IDENTITY_201,
    ENDPOINT,
    ISSUE_ACCESS_TOKEN_200,
    USER_ID,
    MockTransport,
    Reply,
    error_body,
    json_response,
)
from tests.conftest import Client
from tests.contract.conftest import TEST_CLIENT_OPTIONS, CosmosServer

pytestmark = pytest.mark.cosmos

ISSUER = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0"
AUDIENCE = "api://switchboard"
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class AzureWorld:
    client: Client
    acs: MockTransport
    store: CosmosStore
    hub: MockTransport = field(default_factory=MockTransport)

    def caller(self, user_id: str) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "oid": user_id,
            "sub": "pairwise-" + user_id,
            "name": user_id.title(),
            "iat": now,
            "exp": now + 600,
        }
        token = jwt.encode(claims, SIGNING_KEY, algorithm="RS256", headers={"kid": "k"})
        return {"Authorization": f"Bearer {token}"}


def azure_settings(cosmos: CosmosServer, connection_string: str) -> Settings:
    return Settings.from_environ(
        {
            "WEBSITE_INSTANCE_ID": "instance-1",
            "SWITCHBOARD_STORE": "cosmos",
            "COSMOS_ENDPOINT": cosmos.endpoint,
            "COSMOS_KEY": cosmos.key,
            "COSMOS_DATABASE": f"azure-{uuid.uuid4().hex[:10]}",
            "ACS_CONNECTION_STRING": connection_string,
            "AUTH_MODE": "jwt",
            "AUTH_ISSUER": ISSUER,
            "AUTH_AUDIENCE": AUDIENCE,
            "AUTH_USER_CLAIM": "oid",
            "NOTIFICATION_HUB_NAME": "switchboard",
            "NOTIFICATION_HUB_CONNECTION_STRING": (
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;"
                "SharedAccessKey=a2V5"
            ),
        }
    )


def _hub_answers(request: HttpRequest) -> AsyncHttpResponse:
    """Notification Hubs as documented: PUT installation 200, DELETE 204, send 201."""
    status = {"PUT": 200, "PATCH": 200, "DELETE": 204, "POST": 201}[request.method]
    return json_response(request, status)


@pytest.fixture
async def azure(cosmos_server: CosmosServer) -> AsyncIterator[AzureWorld]:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = azure_settings(cosmos_server, f"endpoint={ENDPOINT}/;accesskey={key}")
    # The composition picks the Azure adapters for these settings...
    assert isinstance(build_store(settings), CosmosStore)
    assert isinstance(build_identity_provider(settings), AzureIdentityProvider)
    assert isinstance(build_push_sender(settings), AzurePushHub)
    # ...which run here with test-only transport options (self-signed server, canned ACS).
    await create_database_and_containers(
        cosmos_server.endpoint, settings.cosmos_database, cosmos_server.key, **TEST_CLIENT_OPTIONS
    )
    store = CosmosStore(
        cosmos_server.endpoint, settings.cosmos_database, cosmos_server.key, **TEST_CLIENT_OPTIONS
    )
    transport = MockTransport()
    acs = AzureIdentityProvider.from_connection_string(
        f"endpoint={ENDPOINT}/;accesskey={key}", transport=transport, retry_total=0
    )
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))
    verifier = TokenVerifier(
        StaticKeySource({"keys": [{**public, "kid": "k"}]}), ISSUER, AUDIENCE, "oid"
    )
    hub_transport = MockTransport(_hub_answers)
    hub = AzurePushHub.from_connection_string(
        settings.notification_hub_connection_string.get_secret_value(),  # type: ignore[union-attr]
        "switchboard",
        transport=hub_transport,
        retry_total=0,
    )
    adapters = Adapters(
        store=store,
        identity_provider=acs,
        authenticator=BearerAuthenticator(verifier),
        push_sender=hub,
    )
    rt = Runtime(settings, adapters)
    set_runtime(rt)
    yield AzureWorld(Client(rt), transport, store, hub_transport)
    set_runtime(None)
    await rt.close()


async def test_token_lifecycle_on_azure_adapters(azure: AzureWorld) -> None:
    alice = azure.caller("alice-oid")
    azure.acs.answers.append(Reply(201, CREATE_IDENTITY_201))
    first = await azure.client.request("POST", "/api/token", headers=alice)
    assert first.status == 200, first.body
    assert first.json()["user"] == {"communicationUserId": USER_ID}
    profile = await azure.store.read("users", "alice-oid", "alice-oid")
    assert profile is not None
    assert profile["communicationUserId"] == USER_ID
    assert await azure.store.read("identities", USER_ID, USER_ID) is not None

    azure.acs.answers.append(Reply(200, ISSUE_ACCESS_TOKEN_200))
    again = await azure.client.request("POST", "/api/token", headers=alice)
    assert again.json()["user"] == {"communicationUserId": USER_ID}
    assert azure.acs.requests[-1].path == f"/identities/{USER_ID}/:issueAccessToken"

    me = await azure.client.request("GET", "/api/me", headers=alice)
    assert me.json()["displayName"] == "Alice-Oid"

    azure.acs.answers.append(Reply(204))
    assert (await azure.client.request("DELETE", "/api/me", headers=alice)).status == 204
    assert azure.acs.requests[-1].method == "DELETE"
    assert await azure.store.read("users", "alice-oid", "alice-oid") is None
    assert await azure.store.read("identities", USER_ID, USER_ID) is None


async def test_acs_throttling_is_503_and_nothing_is_written(azure: AzureWorld) -> None:
    azure.acs.answers.append(
        Reply(429, error_body("TooManyRequests", "slow down"), {"Retry-After": "17"})
    )
    resp = await azure.client.request("POST", "/api/token", headers=azure.caller("bob-oid"))
    assert resp.status == 503
    assert resp.headers["retry-after"] == "17"
    assert await azure.store.read("users", "bob-oid", "bob-oid") is None


async def test_health_reads_cosmos(azure: AzureWorld) -> None:
    resp = await azure.client.request("GET", "/api/health")
    assert resp.json() == {
        "status": "ok",
        "store": "cosmos",
        "identity": "acs",
        "auth": "jwt",
        "reactions": {"pending": 0, "parked": 0, "oldestAgeSeconds": None},
    }


async def test_devices_on_azure_adapters(azure: AzureWorld) -> None:
    """A device registered through Cosmos and the Notification Hubs client, erased with the user."""
    bob = azure.caller("bob-oid")
    resp = await azure.client.request(
        "PUT",
        "/api/me/devices/bobs-phone",
        headers=bob,
        json_body={"platform": "fcmv1", "pushChannel": "fcm-token"},
    )
    assert resp.status == 204, resp.body
    [put] = azure.hub.requests
    assert put.method == "PUT"
    assert put.path.startswith("/switchboard/installations/sb-")
    assert put.body["platform"] == "fcmv1"
    assert put.headers["Authorization"].startswith("SharedAccessSignature ")
    stored = await azure.store.read("devices", "bob-oid", "devices")
    assert stored is not None
    assert list(stored["installations"]) == ["bobs-phone"]
    assert "fcm-token" not in json.dumps(stored)
    assert (await azure.client.request("DELETE", "/api/me", headers=bob)).status == 204
    await azure.client.runtime.reactor.drain()  # the erasure's purge removes the device
    assert [r.method for r in azure.hub.requests] == ["PUT", "DELETE"]
    assert azure.hub.requests[1].path == put.path
    assert await azure.store.read("devices", "bob-oid", "devices") is None
