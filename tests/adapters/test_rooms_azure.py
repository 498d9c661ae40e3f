"""The ACS Rooms adapter, exercised through the real `azure-communication-rooms` SDK.

Nothing in the SDK is patched: the client gets an azure-core transport that answers with the
bodies of the REST reference's examples and records what the SDK sent. Source of the bodies:
Azure/azure-rest-api-specs, specification/communication/data-plane/Rooms/stable/2025-03-13/
examples/ Rooms_Create.json, Participants_Update.json, Rooms_Delete.json (the api-version the
SDK 1.2.0 sends by default).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from switchboard.adapters.rooms_azure import AzureRoomsProvider
from switchboard.errors import DependencyUnavailable
from switchboard.ports import RoomNotFound, RoomParticipant
from tests.azure_transport import (
    MockTransport,
    Reply,
    error_body,
    fake_connection_string,
)

API_VERSION = "2025-03-13"
ATTENDEE = "8:acs:db75ed0c-e801-41a3-99a4-66a0a119a06c_00000010-ce28-064a-83fe-084822000666"
PRESENTER = "8:acs:db75ed0c-e801-41a3-99a4-66a0a119a06c_00000010-ce28-064a-83fe-084822000777"
GONE = "8:acs:db75ed0c-e801-41a3-99a4-66a0a119a06c_00000010-ce28-064a-83fe-084822000999"

# Rooms_Create.json, 201
CREATE_ROOM_201: dict[str, Any] = {
    "id": "99117812428622880",
    "createdAt": "2023-06-26T05:46:17.8159131+00:00",
    "validFrom": "2023-06-30T00:00:00+00:00",
    "validUntil": "2023-07-30T00:00:00+00:00",
    "pstnDialOutEnabled": True,
}
# Participants_Update.json's room.
ROOM_ID = "99199690362660524"
VALID_FROM = datetime(2023, 6, 30, tzinfo=UTC)
VALID_UNTIL = datetime(2023, 7, 30, tzinfo=UTC)


@pytest.fixture
def transport() -> MockTransport:
    return MockTransport.replying()


@pytest.fixture
async def rooms(transport: MockTransport) -> AsyncIterator[AzureRoomsProvider]:
    adapter = AzureRoomsProvider.from_settings(
        None, fake_connection_string(), None, transport=transport, retry_total=0
    )
    yield adapter
    await adapter.close()


async def test_create_room_sends_the_window_and_the_roster(
    rooms: AzureRoomsProvider, transport: MockTransport
) -> None:
    transport.answers.append(Reply(201, CREATE_ROOM_201))
    room_id = await rooms.create_room(
        VALID_FROM,
        VALID_UNTIL,
        [RoomParticipant(PRESENTER, "Presenter"), RoomParticipant(ATTENDEE, "Attendee")],
    )
    assert room_id == "99117812428622880"
    [sent] = transport.requests
    assert (sent.method, sent.path) == ("POST", "/rooms")
    assert sent.query["api-version"] == [API_VERSION]
    # The SDK's idempotency header: its own retries never make a second room.
    assert sent.headers["Repeatability-Request-Id"]
    assert sent.body["participants"] == {
        PRESENTER: {"role": "Presenter"},
        ATTENDEE: {"role": "Attendee"},
    }
    assert sent.body["pstnDialOutEnabled"] is False
    assert datetime.fromisoformat(sent.body["validFrom"].replace("Z", "+00:00")) == VALID_FROM
    assert datetime.fromisoformat(sent.body["validUntil"].replace("Z", "+00:00")) == VALID_UNTIL


async def test_participants_are_added_and_removed_by_merge_patch(
    rooms: AzureRoomsProvider, transport: MockTransport
) -> None:
    transport.answers.extend([Reply(200, {}), Reply(200, {})])
    await rooms.add_or_update_participants(ROOM_ID, [RoomParticipant(ATTENDEE, "Attendee")])
    await rooms.remove_participants(ROOM_ID, [GONE])
    added, removed = transport.requests
    assert (added.method, added.path) == ("PATCH", f"/rooms/{ROOM_ID}/participants")
    assert added.headers["Content-Type"].startswith("application/merge-patch+json")
    assert added.body == {"participants": {ATTENDEE: {"role": "Attendee"}}}
    assert (removed.method, removed.path) == ("PATCH", f"/rooms/{ROOM_ID}/participants")
    assert removed.body == {"participants": {GONE: None}}


async def test_a_room_that_is_gone(rooms: AzureRoomsProvider, transport: MockTransport) -> None:
    missing = error_body("NotFound", "Room not found.")
    transport.answers.extend([Reply(404, missing), Reply(404, missing), Reply(404, missing)])
    with pytest.raises(RoomNotFound):
        await rooms.add_or_update_participants(ROOM_ID, [RoomParticipant(ATTENDEE, "Attendee")])
    await rooms.remove_participants(ROOM_ID, [ATTENDEE])  # already gone: nothing to remove
    await rooms.delete_room(ROOM_ID)  # already gone: done


async def test_delete_room(rooms: AzureRoomsProvider, transport: MockTransport) -> None:
    transport.answers.append(Reply(204))
    await rooms.delete_room(ROOM_ID)
    [sent] = transport.requests
    assert (sent.method, sent.path) == ("DELETE", f"/rooms/{ROOM_ID}")


async def test_throttling_and_refused_credentials_are_503(
    rooms: AzureRoomsProvider, transport: MockTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport.answers.extend(
        [
            Reply(429, error_body("TooManyRequests", "slow down"), {"Retry-After": "7"}),
            Reply(403, error_body("Forbidden", "no")),
        ]
    )
    with pytest.raises(DependencyUnavailable) as throttled:
        await rooms.delete_room(ROOM_ID)
    assert throttled.value.retry_after == 7
    caplog.set_level(logging.ERROR)
    with pytest.raises(DependencyUnavailable):
        await rooms.create_room(VALID_FROM, VALID_UNTIL, [])
    assert "managed identity and its role" in caplog.text


async def test_a_window_acs_would_refuse_never_leaves(
    rooms: AzureRoomsProvider, transport: MockTransport
) -> None:
    with pytest.raises(ValueError, match="180 days"):
        await rooms.create_room(VALID_FROM, VALID_FROM.replace(year=2024), [])
    with pytest.raises(ValueError, match="after"):
        await rooms.create_room(VALID_FROM, VALID_FROM, [])
    assert transport.requests == []


async def test_removing_nobody_sends_nothing(
    rooms: AzureRoomsProvider, transport: MockTransport
) -> None:
    await rooms.remove_participants(ROOM_ID, [])
    assert transport.requests == []
