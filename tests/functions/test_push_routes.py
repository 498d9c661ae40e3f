"""Push routes and the call_events function through their registered handlers: devices per
user (a second and third user see and change nothing of the first's), the 10-device limit, the
cost of a registration, hub failures, erase, the dev outbox, and ACS call events."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from switchboard.adapters.push_local import LocalPushHub
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable, InvalidInput
from switchboard.ports import PushMessage, PushRejected
from switchboard.runtime import Runtime, set_runtime
from switchboard.services.calls import call_index_pk
from switchboard.services.push import (
    DEVICES,
    DEVICES_DOC_ID,
    hub_installation_id,
)
from tests.conftest import Client, make_runtime
from tests.functions.test_call_events import CALL_ENDED_EVENT, call_events, grid_event
from tests.proxies import spy, spy_of

APNS = {"platform": "apns", "pushChannel": "a1b2c3d4e5f6"}
FCM = {"platform": "fcmv1", "pushChannel": "fcm:token-XYZ_123"}


@dataclasses.dataclass
class World:
    client: Client
    hub: LocalPushHub

    @property
    def runtime(self) -> Runtime:
        return self.client.runtime


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    base = make_runtime(tmp_path, store=spy(SqliteStore(tmp_path / "switchboard.sqlite")))
    hub = LocalPushHub(tmp_path)
    rt = Runtime(base.settings, dataclasses.replace(base.adapters, push_sender=spy(hub)))
    set_runtime(rt)
    yield World(Client(rt), hub)
    set_runtime(None)
    await rt.close()


def counts(rt: Runtime) -> tuple[dict[str, int], dict[str, int]]:
    return dict(spy_of(rt.adapters.store).calls), dict(spy_of(rt.push_sender).calls)


async def signed_in(world: World, user_id: str, name: str | None = None) -> dict[str, str]:
    """A caller whose profile exists already, so the counts below are the route's own."""
    headers = world.client.login(user_id, name)
    assert (await world.client.request("GET", "/api/me", headers=headers)).status == 200
    return headers


def reset(rt: Runtime) -> None:
    spy_of(rt.adapters.store).calls.clear()
    spy_of(rt.push_sender).calls.clear()


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/me/devices/phone-1"), ("DELETE", "/api/me/devices/phone-1")],
)
async def test_device_routes_need_a_caller(world: World, method: str, path: str) -> None:
    resp = await world.client.request(method, path, json_body=APNS)
    assert resp.status == 401
    assert counts(world.runtime) == ({}, {})


async def test_register_costs_one_store_write_and_one_hub_call(world: World) -> None:
    bob = await signed_in(world, "bob", "Bob")
    await world.runtime.push.user_tag("warm")  # the tag key: read (or made) once per process
    reset(world.runtime)
    resp = await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    assert resp.status == 204, resp.body
    store, hub = counts(world.runtime)
    assert store == {"read": 1, "create": 1}
    assert hub == {"put_installation": 1}
    installed = world.hub.installation(hub_installation_id("bob", "phone-1"))
    assert installed == {
        "platform": "apns",
        "pushChannel": APNS["pushChannel"],
        "tag": await world.runtime.push.user_tag("bob"),
    }

    # Same device, new token: the hub's installation is patched, the store is not written.
    reset(world.runtime)
    again = {"platform": "apns", "pushChannel": "ffff0000"}
    resp = await world.client.request(
        "PUT", "/api/me/devices/phone-1", headers=bob, json_body=again
    )
    assert resp.status == 204
    assert counts(world.runtime) == ({"read": 1}, {"update_push_channel": 1})
    assert (world.hub.installation(hub_installation_id("bob", "phone-1")) or {})[
        "pushChannel"
    ] == "ffff0000"

    # Same device, other platform: one replace and one PUT.
    reset(world.runtime)
    resp = await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=FCM)
    assert resp.status == 204
    assert counts(world.runtime) == ({"read": 1, "replace": 1}, {"put_installation": 1})


async def test_a_second_user_cannot_touch_the_first_users_device(world: World) -> None:
    bob = world.client.login("bob")
    mallory = world.client.login("mallory")
    await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    # Mallory sends the same installation id: she gets her own installation, bob's is untouched.
    resp = await world.client.request(
        "PUT", "/api/me/devices/phone-1", headers=mallory, json_body=FCM
    )
    assert resp.status == 204
    assert (world.hub.installation(hub_installation_id("bob", "phone-1")) or {})[
        "tag"
    ] == await world.runtime.push.user_tag("bob")
    assert (world.hub.installation(hub_installation_id("mallory", "phone-1")) or {})[
        "tag"
    ] == await world.runtime.push.user_tag("mallory")
    # Mallory's delete removes her device only.
    resp = await world.client.request("DELETE", "/api/me/devices/phone-1", headers=mallory)
    assert resp.status == 204
    assert world.hub.installation(hub_installation_id("mallory", "phone-1")) is None
    assert world.hub.installation(hub_installation_id("bob", "phone-1")) is not None
    assert list(await world.runtime.push.devices("bob")) == ["phone-1"]
    # A third user deleting an id they never registered changes nothing and calls no hub.
    carol = await signed_in(world, "carol")
    reset(world.runtime)
    resp = await world.client.request("DELETE", "/api/me/devices/phone-1", headers=carol)
    assert resp.status == 204
    assert counts(world.runtime) == ({"read": 1}, {})
    assert world.hub.installation(hub_installation_id("bob", "phone-1")) is not None


async def test_delete_removes_from_hub_and_store(world: World) -> None:
    bob = await signed_in(world, "bob")
    await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    await world.client.request("PUT", "/api/me/devices/tablet", headers=bob, json_body=FCM)
    reset(world.runtime)
    resp = await world.client.request("DELETE", "/api/me/devices/phone-1", headers=bob)
    assert resp.status == 204
    assert counts(world.runtime) == ({"read": 1, "replace": 1}, {"delete_installation": 1})
    assert list(await world.runtime.push.devices("bob")) == ["tablet"]
    assert world.hub.installation(hub_installation_id("bob", "phone-1")) is None


async def test_at_most_ten_devices(world: World) -> None:
    bob = world.client.login("bob")
    for i in range(10):
        resp = await world.client.request(
            "PUT", f"/api/me/devices/d{i}", headers=bob, json_body=APNS
        )
        assert resp.status == 204
    resp = await world.client.request("PUT", "/api/me/devices/d10", headers=bob, json_body=APNS)
    assert resp.status == 409
    assert resp.json()["code"] == "device_limit"
    assert world.hub.installation(hub_installation_id("bob", "d10")) is None
    # Re-registering a known one is still fine; another user is not limited by bob's.
    resp = await world.client.request("PUT", "/api/me/devices/d3", headers=bob, json_body=FCM)
    assert resp.status == 204
    alice = world.client.login("alice")
    resp = await world.client.request("PUT", "/api/me/devices/d10", headers=alice, json_body=APNS)
    assert resp.status == 204


@pytest.mark.parametrize(
    "body",
    [
        {"platform": "wns", "pushChannel": "x"},
        {"platform": "apns"},
        {"platform": "apns", "pushChannel": ""},
        {"platform": "apns", "pushChannel": "has space"},
        {"platform": "apns", "pushChannel": "x", "userId": "alice"},
        {"platform": "apns", "pushChannel": "x" * 5000},
    ],
)
async def test_bad_registrations_change_nothing(world: World, body: dict[str, Any]) -> None:
    bob = world.client.login("bob")
    reset(world.runtime)
    resp = await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=body)
    assert resp.status == 400
    assert resp.headers["content-type"] == "application/problem+json"
    assert counts(world.runtime) == ({}, {})


async def test_a_bad_installation_id_is_refused(world: World) -> None:
    bob = world.client.login("bob")
    resp = await world.client.request("PUT", "/api/me/devices/..", headers=bob, json_body=APNS)
    assert resp.status == 400


@pytest.mark.parametrize(
    "failure", [DependencyUnavailable("push", retry_after=9), PushRejected("quota")]
)
async def test_hub_failure_is_503_and_undoes_the_store_write(
    world: World, failure: Exception
) -> None:
    bob = world.client.login("bob")
    spy_of(world.runtime.push_sender).fail["put_installation"] = failure
    resp = await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    assert resp.status == 503
    assert resp.headers["retry-after"]
    assert await world.runtime.push.devices("bob") == {}


async def test_hub_failure_on_delete_changes_nothing(world: World) -> None:
    bob = world.client.login("bob")
    await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    spy_of(world.runtime.push_sender).fail["delete_installation"] = DependencyUnavailable("push")
    resp = await world.client.request("DELETE", "/api/me/devices/phone-1", headers=bob)
    assert resp.status == 503
    assert list(await world.runtime.push.devices("bob")) == ["phone-1"]


async def test_erase_removes_the_users_devices_from_the_hub(world: World) -> None:
    bob = world.client.login("bob")
    alice = world.client.login("alice")
    for name in ("phone", "tablet"):
        await world.client.request("PUT", f"/api/me/devices/{name}", headers=bob, json_body=APNS)
    await world.client.request("PUT", "/api/me/devices/phone", headers=alice, json_body=APNS)
    await world.client.request("GET", "/api/me", headers=bob)
    resp = await world.client.request("DELETE", "/api/me", headers=bob)
    assert resp.status == 204
    await world.runtime.reactor.drain()
    for name in ("phone", "tablet"):
        assert world.hub.installation(hub_installation_id("bob", name)) is None
    assert await world.runtime.adapters.store.read(DEVICES, "bob", DEVICES_DOC_ID) is None
    assert world.hub.installation(hub_installation_id("alice", "phone")) is not None


async def test_erase_with_the_hub_down_keeps_the_devices_until_the_purge_succeeds(
    world: World,
) -> None:
    bob = world.client.login("bob")
    await world.client.request("PUT", "/api/me/devices/phone", headers=bob, json_body=APNS)
    hub = spy_of(world.runtime.push_sender)
    hub.fail["delete_installation"] = DependencyUnavailable("push")
    resp = await world.client.request("DELETE", "/api/me", headers=bob)
    assert resp.status == 204  # the erase is final; the purge follows
    assert await world.runtime.reactor.run_due() == 1  # it ran, and failed
    assert list(await world.runtime.push.devices("bob")) == ["phone"]  # kept for the retry
    assert (await world.runtime.reactor.backlog()).pending == 1
    hub.fail.clear()
    await world.runtime.reactor.drain()
    assert await world.runtime.push.devices("bob") == {}
    assert world.hub.installation(hub_installation_id("bob", "phone")) is None


async def test_dev_outbox_shows_sends(world: World) -> None:
    bob = world.client.login("bob")
    await world.client.request("PUT", "/api/me/devices/phone", headers=bob, json_body=APNS)
    message = PushMessage("Hi", "there", {"kind": "clubCall"})
    result = await world.runtime.push.fan_out(message, ["bob", "carol"])
    assert (result.recipients, result.sends, result.failed_sends) == (2, 1, 0)
    resp = await world.client.request("GET", "/api/dev/push")
    assert resp.status == 200
    [item] = resp.json()["items"]
    assert item["title"] == "Hi"
    assert item["deliveredTo"] == [
        {"installationId": hub_installation_id("bob", "phone"), "platform": "apns"}
    ]
    assert APNS["pushChannel"] not in resp.body.decode()
    assert item["tags"] == [
        await world.runtime.push.user_tag("bob"),
        await world.runtime.push.user_tag("carol"),
    ]


async def test_dev_outbox_is_404_outside_dev_mode(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    rt = Runtime(rt.settings, dataclasses.replace(rt.adapters, dev_issuer=None))
    set_runtime(rt)
    try:
        resp = await Client(rt).request("GET", "/api/dev/push")
        assert resp.status == 404
    finally:
        set_runtime(None)
        await rt.close()


GID = "5b1c0a4e-3a5a-4b1e-9e58-0f1f6c1d2e3f"
CALL_ENDED = CALL_ENDED_EVENT


# -- with the clubs registry -----------------------------------------------------------------


async def club_with_bob(world: World) -> tuple[str, dict[str, str], dict[str, str]]:
    alice = world.client.login("alice", "Alice")
    bob = world.client.login("bob", "Bob")
    for who in (alice, bob):
        await world.client.request("GET", "/api/me", headers=who)
    created = await world.client.request(
        "POST", "/api/clubs", headers=alice, json_body={"name": "Chess", "visibility": "open"}
    )
    club_id = created.json()["clubId"]
    joined = await world.client.request("POST", f"/api/clubs/{club_id}/join", headers=bob)
    assert joined.status == 200
    return club_id, alice, bob


async def test_a_club_call_pushes_the_other_members_devices(world: World) -> None:
    club_id, alice, bob = await club_with_bob(world)
    await world.client.request("PUT", "/api/me/devices/bobs-phone", headers=bob, json_body=APNS)
    await world.client.request("PUT", "/api/me/devices/alices-phone", headers=alice, json_body=FCM)
    reset(world.runtime)
    put = await world.client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=alice, json_body={"groupCallId": GID}
    )
    assert put.status == 201
    # The registration itself sent nothing: the fan-out is the `call` reconciler's.
    assert counts(world.runtime)[1] == {}
    await world.runtime.reactor.drain()
    assert counts(world.runtime)[1] == {"send": 1}
    [sent] = await world.hub.sent()
    assert sent["title"] == "Alice started a call"
    assert sent["data"]["groupCallId"] == GID
    assert sent["data"]["clubId"] == club_id
    assert sent["deliveredTo"] == [
        {"installationId": hub_installation_id("bob", "bobs-phone"), "platform": "apns"}
    ]  # alice, who started it, gets nothing


async def test_a_push_failure_never_fails_the_registration(world: World) -> None:
    club_id, alice, bob = await club_with_bob(world)
    await world.client.request("PUT", "/api/me/devices/bobs-phone", headers=bob, json_body=APNS)
    spy_of(world.runtime.push_sender).fail["send"] = DependencyUnavailable("push")
    put = await world.client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=alice, json_body={"groupCallId": GID}
    )
    assert put.status == 201
    await world.runtime.reactor.drain()  # the fan-out fails, is retried, and parks
    got = await world.client.request("GET", f"/api/clubs/{club_id}/call", headers=bob)
    assert got.json()["groupCallId"] == GID
    assert (await world.runtime.reactor.backlog()).parked == 1
    # The hub is back: the parked fan-out, re-armed, sends from its cursor.
    spy_of(world.runtime.push_sender).fail.clear()
    assert await world.runtime.reactor.rearm_parked() == 1
    await world.runtime.reactor.drain()
    assert [p["deliveredTo"][0]["platform"] for p in await world.hub.sent()] == ["apns"]


async def test_call_ended_clears_the_clubs_call_through_the_registry(world: World) -> None:
    club_id, alice, bob = await club_with_bob(world)
    put = await world.client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=alice, json_body={"groupCallId": GID}
    )
    assert put.status == 201
    await world.runtime.reactor.drain()
    # An event from before this registration (the call's earlier life) clears nothing.
    await call_events(grid_event(CALL_ENDED))
    got = await world.client.request("GET", f"/api/clubs/{club_id}/call", headers=bob)
    assert got.status == 200
    now = datetime.now(UTC).isoformat()
    await call_events(grid_event({**CALL_ENDED, "eventTime": now}))
    got = await world.client.request("GET", f"/api/clubs/{club_id}/call", headers=bob)
    assert got.status == 404
    assert got.json()["code"] == "no_active_call"
    # Delivered twice: still fine, and a new call registered afterwards is left alone.
    put = await world.client.request(
        "PUT", f"/api/clubs/{club_id}/call", headers=bob, json_body={"groupCallId": GID}
    )
    assert put.status == 201
    await world.runtime.reactor.drain()
    await call_events(grid_event({**CALL_ENDED, "eventTime": now}))
    got = await world.client.request("GET", f"/api/clubs/{club_id}/call", headers=bob)
    assert got.status == 200


async def test_in_azure_without_a_hub_pushes_are_off(tmp_path: Path) -> None:
    """No local outbox in Azure: the device routes say pushes are not configured, a club call
    still registers (and is indexed for call events), nothing is sent."""
    from switchboard.runtime import build_push_sender
    from switchboard.settings import Settings

    azure = Settings.from_environ(
        {
            "WEBSITE_INSTANCE_ID": "i",
            "SWITCHBOARD_STORE": "cosmos",
            "COSMOS_ENDPOINT": "https://c.documents.azure.com",
            "ACS_ENDPOINT": "https://a.communication.azure.com",
            "AUTH_MODE": "jwt",
            "AUTH_ISSUER": "https://login.example",
            "AUTH_AUDIENCE": "api",
        }
    )
    assert build_push_sender(azure) is None
    base = make_runtime(tmp_path)
    rt = Runtime(base.settings, base.adapters)
    rt.__dict__["push_sender"] = None
    set_runtime(rt)
    try:
        client = Client(rt)
        bob = client.login("bob")
        resp = await client.request("PUT", "/api/me/devices/phone", headers=bob, json_body=APNS)
        assert resp.status == 404
        assert resp.json()["code"] == "push_not_configured"
        assert await rt.push.devices("bob") == {}
        assert (await client.request("DELETE", "/api/me/devices/phone", headers=bob)).status == 204
        created = await client.request(
            "POST", "/api/clubs", headers=bob, json_body={"name": "Chess", "visibility": "open"}
        )
        club_id = created.json()["clubId"]
        put = await client.request(
            "PUT", f"/api/clubs/{club_id}/call", headers=bob, json_body={"groupCallId": GID}
        )
        assert put.status == 201
        await rt.reactor.drain()
        assert (await rt.adapters.store.query("system", call_index_pk(GID))).items
    finally:
        set_runtime(None)
        await rt.close()


async def test_a_push_channel_the_hub_refuses_is_400_and_writes_nothing(world: World) -> None:
    """The hub validates push channels (an APNs token that is not a device token: 400); that is
    the caller's bad input, not a 500, and the device takes no place in their ten."""
    bob = world.client.login("bob")
    spy_of(world.runtime.push_sender).fail["put_installation"] = InvalidInput(
        "The push service refused this pushChannel.", field="pushChannel"
    )
    resp = await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    assert resp.status == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "invalid_input"
    assert await world.runtime.push.devices("bob") == {}


async def test_an_old_call_ended_never_clears_a_newer_call_whose_index_write_failed(
    world: World,
) -> None:
    """The call index is written in the background and may fail (then logged): a CallEnded of
    the call's earlier life must still leave the newer registration of the same id alone."""
    club_id, alice, bob = await club_with_bob(world)
    path = f"/api/clubs/{club_id}/call"
    body = {"groupCallId": GID}
    assert (await world.client.request("PUT", path, headers=alice, json_body=body)).status == 201
    await world.runtime.reactor.drain()
    assert (await world.client.request("DELETE", path, headers=alice)).status == 204
    ended = datetime.now(UTC)  # the first call's CallEnded, delivered late
    spy_of(world.runtime.adapters.store).fail["upsert:system"] = DependencyUnavailable("store")
    assert (await world.client.request("PUT", path, headers=bob, json_body=body)).status == 201
    await world.runtime.reactor.drain()
    spy_of(world.runtime.adapters.store).fail.clear()
    await call_events(grid_event({**CALL_ENDED, "eventTime": ended.isoformat()}))
    got = await world.client.request("GET", path, headers=alice)
    assert got.status == 200
    assert got.json()["startedBy"] == "bob"


async def test_erase_drops_the_users_part_of_the_dev_push_outbox(world: World) -> None:
    """The local hub's outbox is ours to keep: after Bob's erase it holds no push to his tag,
    none reaching his device and none naming him; Carol's part (a third user) stays whole."""
    rt = world.runtime
    bob, carol = await signed_in(world, "bob", "Bob"), await signed_in(world, "carol", "Carol")
    for who, device in ((bob, "bob-phone"), (carol, "carol-phone")):
        resp = await world.client.request(
            "PUT", f"/api/me/devices/{device}", headers=who, json_body=APNS
        )
        assert resp.status == 204
    by_dave = PushMessage(
        "Dave started a call", "in Chess", {"kind": "clubCall", "startedBy": "dave"}
    )
    by_bob = PushMessage("Bob started a call", "in Go", {"kind": "clubCall", "startedBy": "bob"})
    await rt.push.fan_out(by_dave, ["bob", "carol"])
    await rt.push.fan_out(by_bob, ["carol"])
    bob_tag, carol_tag = await rt.push.user_tag("bob"), await rt.push.user_tag("carol")
    before = (await world.client.request("GET", "/api/dev/push")).json()["items"]
    assert [i["title"] for i in before] == ["Bob started a call", "Dave started a call"]

    assert (await world.client.request("DELETE", "/api/me", headers=bob)).status == 204
    await rt.reactor.drain()  # the erasure reconciler purges the outbox
    after = await world.client.request("GET", "/api/dev/push")
    [kept] = after.json()["items"]
    assert kept["title"] == "Dave started a call"
    assert kept["tags"] == [carol_tag]
    assert kept["deliveredTo"] == [
        {"installationId": hub_installation_id("carol", "carol-phone"), "platform": "apns"}
    ]
    text = after.body.decode()
    assert bob_tag not in text
    assert hub_installation_id("bob", "bob-phone") not in text
    assert '"bob"' not in text


async def test_a_device_tagged_under_an_older_tag_is_put_again(world: World) -> None:
    """A device registered before the keyed tag (its entry names no tag key) has its whole
    installation put again on its next registration, not only its push channel patched."""
    rt = world.runtime
    bob = await signed_in(world, "bob", "Bob")
    await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    doc = await rt.adapters.store.read("devices", "bob", "devices")
    assert doc is not None
    old_entry = {k: v for k, v in doc["installations"]["phone-1"].items() if k != "tagKey"}
    await rt.adapters.store.replace(
        "devices", {**doc, "installations": {"phone-1": old_entry}}, doc["_etag"]
    )
    reset(rt)
    resp = await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    assert resp.status == 204
    assert counts(rt)[1] == {"put_installation": 1}
    installed = world.hub.installation(hub_installation_id("bob", "phone-1"))
    assert installed is not None
    assert installed["tag"] == await rt.push.user_tag("bob")
    reset(rt)
    await world.client.request("PUT", "/api/me/devices/phone-1", headers=bob, json_body=APNS)
    assert counts(rt)[1] == {"update_push_channel": 1}  # tagged under the key now: a patch
