"""Push over real HTTP: a device registered through the devserver lands in the local hub and
survives a restart; ACS call events POSTed to the devserver's Event Grid endpoint (the
subscription handshake, a batch mixing good, unknown and malformed events) answer 200."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.e2e.conftest import DevServerProcess

EVENTGRID = "/runtime/webhooks/eventgrid?functionName=call_events"


def call_ended(group_call_id: str, event_time: str) -> dict[str, Any]:
    """A Microsoft.Communication.CallEnded event as the ACS event schema documents it."""
    return {
        "id": "530183db-987b-4a3a-b6c1-3391bab12864",
        "topic": "/subscriptions/s/resourcegroups/g/providers/microsoft.communication/"
        "communicationservices/acs",
        "subject": "call/c2VydmVyQ2FsbElk",
        "data": {
            "durationOfCall": 49.7,
            "startedBy": {
                "rawId": "8:acs:r_1",
                "communicationUser": {"id": "8:acs:r_1"},
                "role": "Attendee",
            },
            "serverCallId": "c2VydmVyQ2FsbElk",
            "group": {"id": group_call_id},
            "isTwoParty": False,
            "correlationId": "c0ffee",
            "isRoomsCall": False,
        },
        "eventType": "Microsoft.Communication.CallEnded",
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": event_time,
    }


def test_device_registration_over_http(fresh_devserver: DevServerProcess) -> None:
    base = fresh_devserver.base_url
    bob = fresh_devserver.login("bob", "Bob")
    resp = httpx.put(
        f"{base}/api/me/devices/bobs-iphone",
        headers=bob,
        json={"platform": "apns", "pushChannel": "a1b2c3d4"},
    )
    assert resp.status_code == 204
    fresh_devserver.restart()
    # Still registered after a restart: removing it is a real removal, and idempotent.
    assert httpx.delete(f"{base}/api/me/devices/bobs-iphone", headers=bob).status_code == 204
    assert httpx.delete(f"{base}/api/me/devices/bobs-iphone", headers=bob).status_code == 204
    assert httpx.get(f"{base}/api/dev/push").json() == {"items": []}


def test_call_events_endpoint(devserver: DevServerProcess) -> None:
    url = f"{devserver.base_url}{EVENTGRID}"
    handshake = httpx.post(
        url,
        json=[
            {
                "id": "v",
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
                "eventTime": "2026-01-01T00:00:00Z",
                "subject": "",
                "topic": "t",
                "dataVersion": "1",
            }
        ],
    )
    assert handshake.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    batch = [
        call_ended("5b1c0a4e-3a5a-4b1e-9e58-0f1f6c1d2e3f", "2026-01-01T00:00:00Z"),
        {**call_ended("x", "2026-01-01T00:00:00Z"), "eventType": "Contoso.Other"},
        {**call_ended("x", "2026-01-01T00:00:00Z"), "data": {"group": None}},
        {**call_ended("x", "2026-01-01T00:00:00Z"), "data": "not an object"},
    ]
    assert httpx.post(url, json=batch).status_code == 200


def test_readme_push_walkthrough(fresh_devserver: DevServerProcess) -> None:
    """bob registers a device, alice starts the club's call, bob's push is in the dev outbox,
    and ACS's CallEnded clears the club's call — over HTTP, as docs/push.md shows."""
    import time
    from datetime import UTC, datetime

    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice", "Alice")
    bob = fresh_devserver.login("bob", "Bob")
    for who in (alice, bob):
        httpx.get(f"{base}/api/me", headers=who).raise_for_status()
    club = httpx.post(
        f"{base}/api/clubs", headers=alice, json={"name": "Chess", "visibility": "open"}
    ).json()["clubId"]
    httpx.post(f"{base}/api/clubs/{club}/join", headers=bob).raise_for_status()
    device = {"platform": "apns", "pushChannel": "740f4707bebcf74f9b7c25d48e3358945f6aa01d"}
    assert (
        httpx.put(f"{base}/api/me/devices/bobs-iphone", headers=bob, json=device).status_code == 204
    )
    gid = "5b2c9c3e-0f1a-4d7e-9a44-8e2b51c0d6a1"
    put = httpx.put(f"{base}/api/clubs/{club}/call", headers=alice, json={"groupCallId": gid})
    assert put.status_code == 201
    items: list[dict[str, Any]] = []
    for _ in range(50):  # the fan-out runs after the answer: wait for it, without timing it
        items = httpx.get(f"{base}/api/dev/push").json()["items"]
        if items:
            break
        time.sleep(0.1)
    [push] = items
    assert push["title"] == "Alice started a call"
    assert push["data"]["groupCallId"] == gid
    assert push["data"]["clubId"] == club
    assert [d["platform"] for d in push["deliveredTo"]] == ["apns"]
    assert device["pushChannel"] not in json.dumps(items)

    ended = call_ended(gid, datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    assert httpx.post(f"{base}{EVENTGRID}", json=[ended]).status_code == 200
    got = httpx.get(f"{base}/api/clubs/{club}/call", headers=bob)
    assert got.status_code == 404
    assert got.json()["code"] == "no_active_call"
