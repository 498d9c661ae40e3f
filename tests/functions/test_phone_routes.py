"""Phone & SMS routes through their registered handlers, on the embedded adapters (SQLite and the
local SMS outbox): verification through the outbox, a second user who can neither use the first
one's code nor take their number, bad input, limits, erase, SMS not configured, and the
`sms_events` Event Grid function with events shaped as the ACS event schema documents."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from switchboard.adapters.sms_local import LocalSmsOutbox
from switchboard.errors import DependencyUnavailable, NotFound
from switchboard.runtime import Runtime, set_runtime
from switchboard.services.phone import PHONE, PhoneService, message_key, number_key
from tests.conftest import Client, app_server, make_runtime
from tests.fakes import store_down
from tests.proxies import spy_of

ALICE_NUMBER = "+14255550123"
BOB_NUMBER = "+14255550199"
CAROL_NUMBER = "+14255550177"


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def outbox_code(client: Client, to: str) -> str:
    resp = await client.request("GET", "/api/dev/outbox")
    assert resp.status == 200
    for item in resp.json()["items"]:
        if item["to"] == to and item["tag"] == "verification":
            match = re.search(r"\b(\d{6})\b", item["message"])
            assert match
            return match.group(1)
    raise AssertionError("no code in the outbox")


async def verify_number(client: Client, headers: dict[str, str], number: str) -> dict[str, Any]:
    sent = await client.request(
        "POST", "/api/me/phone", headers=headers, json_body={"phoneNumber": number}
    )
    assert sent.status == 202, sent.body
    code = await outbox_code(client, number)
    resp = await client.request(
        "POST", "/api/me/phone/verify", headers=headers, json_body={"code": code}
    )
    assert resp.status == 200, resp.body
    body: dict[str, Any] = resp.json()
    return body


PROTECTED = [
    ("POST", "/api/me/phone", {"phoneNumber": ALICE_NUMBER}),
    ("POST", "/api/me/phone/verify", {"code": "123456"}),
    ("POST", "/api/invites/sms", {"to": BOB_NUMBER, "clubId": "c1"}),
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_every_phone_route_needs_a_caller(
    counting_client: Client, method: str, path: str, body: dict[str, str]
) -> None:
    resp = await counting_client.request(method, path, json_body=body)
    assert resp.status == 401
    assert resp.json()["code"] == "unauthenticated"
    assert spy_of(counting_client.runtime.adapters.store).calls == {}


async def test_alice_verifies_her_number_through_the_outbox(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = client.login("alice", "Alice")
    sent = await client.request(
        "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": "+1 425-555-0123"}
    )
    assert sent.status == 202
    body = sent.json()
    assert set(body) == {"messageId", "status", "expiresAt"}
    assert body["status"] == "accepted"
    outbox = (await client.request("GET", "/api/dev/outbox")).json()["items"]
    assert outbox[0]["to"] == ALICE_NUMBER  # normalised to E.164
    assert outbox[0]["messageId"] == body["messageId"]
    code = await outbox_code(client, ALICE_NUMBER)

    wrong = "000000" if code != "000000" else "111111"
    bad = await client.request(
        "POST", "/api/me/phone/verify", headers=alice, json_body={"code": wrong}
    )
    assert bad.status == 400
    assert bad.json()["code"] == "invalid_code"

    ok = await client.request(
        "POST", "/api/me/phone/verify", headers=alice, json_body={"code": code}
    )
    assert ok.status == 200
    assert ok.json()["phoneNumber"] == ALICE_NUMBER
    assert ok.json()["phoneVerified"] is True
    me = (await client.request("GET", "/api/me", headers=alice)).json()
    assert me["phoneNumber"] == ALICE_NUMBER  # the owner sees it in full
    assert me["phoneVerified"] is True

    # Spent: the same code does not verify twice.
    again = await client.request(
        "POST", "/api/me/phone/verify", headers=alice, json_body={"code": code}
    )
    assert again.status == 400
    # Only the code's hash is stored, and neither the number nor the code is ever logged.
    stored = json.dumps(await client.runtime.adapters.store.read(PHONE, "alice", "phone"))
    assert code not in stored
    logged = caplog.text
    assert code not in logged
    assert ALICE_NUMBER not in logged
    assert "4255550123" not in logged
    assert "0123" in logged  # masked to the last 4


async def test_bob_can_use_neither_alices_code_nor_her_number(client: Client) -> None:
    alice, bob = client.login("alice", "Alice"), client.login("bob", "Bob")
    await client.request(
        "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
    )
    code = await outbox_code(client, ALICE_NUMBER)
    stolen = await client.request(
        "POST", "/api/me/phone/verify", headers=bob, json_body={"code": code}
    )
    assert stolen.status == 400
    assert stolen.json()["code"] == "invalid_code"
    mine = await client.request(
        "POST", "/api/me/phone/verify", headers=alice, json_body={"code": code}
    )
    assert mine.status == 200

    # (A code for her number asked by another user: tests/unit/test_phone_service.py.)
    bob_me = (await client.request("GET", "/api/me", headers=bob)).json()
    assert bob_me["phoneNumber"] is None
    assert bob_me["phoneVerified"] is False
    # Bob verifies his own; Alice's stays hers.
    assert (await verify_number(client, bob, BOB_NUMBER))["phoneNumber"] == BOB_NUMBER
    alice_me = (await client.request("GET", "/api/me", headers=alice)).json()
    assert alice_me["phoneNumber"] == ALICE_NUMBER


async def test_a_stranger_cannot_lock_the_numbers_owner_out(client: Client) -> None:
    """Bob asks for codes to Alice's number until he is refused; Alice, and Carol after her,
    still get theirs. Bob's 429 does not say "to this number"."""
    from switchboard.services.phone import CODES_PER_REQUESTER

    alice, bob, carol = (client.login(u, u.title()) for u in ("alice", "bob", "carol"))
    clock = _Clock()  # the minute between sends, without waiting
    rt = client.runtime
    rt.__dict__["phone"] = PhoneService(
        rt.adapters.store, rt.adapters.sms_sender, lambda: rt.identity, clock=clock
    )
    for _ in range(CODES_PER_REQUESTER):
        resp = await client.request(
            "POST", "/api/me/phone", headers=bob, json_body={"phoneNumber": ALICE_NUMBER}
        )
        assert resp.status == 202, resp.body
        clock.advance(minutes=2)
    refused = await client.request(
        "POST", "/api/me/phone", headers=bob, json_body={"phoneNumber": ALICE_NUMBER}
    )
    assert refused.status == 429
    assert "number" not in refused.json()["detail"].lower()
    assert int(refused.headers["retry-after"]) > 23 * 3600
    assert (await verify_number(client, alice, ALICE_NUMBER))["phoneNumber"] == ALICE_NUMBER
    clock.advance(minutes=2)
    third = await client.request(
        "POST", "/api/me/phone", headers=carol, json_body={"phoneNumber": ALICE_NUMBER}
    )
    assert third.status == 202
    items = (await client.request("GET", "/api/dev/outbox")).json()["items"]
    assert len(items) == CODES_PER_REQUESTER + 2


async def test_codes_and_invitations_refuse_pumping_targets(inviting: Client) -> None:
    alice = inviting.login("alice", "Alice")
    for path, body, field in [
        ("/api/me/phone", {"phoneNumber": "+881631234567"}, "phoneNumber"),
        ("/api/me/phone", {"phoneNumber": "+19005550100"}, "phoneNumber"),
        ("/api/invites/sms", {"to": "+979123456789", "clubId": "club1"}, "to"),
        ("/api/invites/sms", {"to": "+448712345678", "clubId": "club1"}, "to"),
    ]:
        resp = await inviting.request("POST", path, headers=alice, json_body=body)
        assert resp.status == 400, resp.body
        assert resp.json()["code"] == "phone_number_not_allowed"
        assert resp.json()["field"] == field
    assert (await inviting.request("GET", "/api/dev/outbox")).json()["items"] == []


async def test_sms_allowed_countries_is_applied(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, SMS_ALLOWED_COUNTRIES="GB")
    set_runtime(rt)
    try:
        client = Client(rt)
        alice = client.login("alice", "Alice")
        refused = await client.request(
            "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
        )
        assert refused.status == 400
        assert refused.json()["code"] == "phone_number_not_allowed"
        ok = await client.request(
            "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": "+447400123456"}
        )
        assert ok.status == 202
    finally:
        set_runtime(None)
        await rt.close()


async def test_resend_is_limited_with_retry_after(client: Client) -> None:
    alice = client.login("alice", "Alice")
    first = await client.request(
        "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
    )
    assert first.status == 202
    second = await client.request(
        "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": BOB_NUMBER}
    )
    assert second.status == 429
    assert second.json()["code"] == "too_many_requests"
    assert 1 <= int(second.headers["retry-after"]) <= 60
    assert len((await client.request("GET", "/api/dev/outbox")).json()["items"]) == 1


async def test_five_wrong_codes_kill_the_code(client: Client) -> None:
    alice = client.login("alice", "Alice")
    await client.request(
        "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
    )
    code = await outbox_code(client, ALICE_NUMBER)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        resp = await client.request(
            "POST", "/api/me/phone/verify", headers=alice, json_body={"code": wrong}
        )
        assert resp.status == 400
    resp = await client.request(
        "POST", "/api/me/phone/verify", headers=alice, json_body={"code": code}
    )
    assert resp.status == 400
    assert resp.json()["code"] == "invalid_code"
    assert (await client.request("GET", "/api/me", headers=alice)).json()["phoneVerified"] is False


# fmt: off
BAD_INPUT = [
    ("/api/me/phone", {"phoneNumber": "hello"}, "invalid_phone_number", "phoneNumber"),
    ("/api/me/phone", {"phoneNumber": "+1425555"}, "invalid_phone_number", "phoneNumber"),
    ("/api/me/phone", {"phoneNumber": "4255550123"}, "invalid_phone_number", "phoneNumber"),
    ("/api/me/phone", {"phoneNumber": "+99912345678"}, "invalid_phone_number", "phoneNumber"),
    ("/api/me/phone", {"phoneNumber": 14255550123}, "invalid_input", "phoneNumber"),
    ("/api/me/phone", {"phoneNumber": "+1" + "2" * 40}, "invalid_input", "phoneNumber"),
    ("/api/me/phone", {}, "invalid_input", "phoneNumber"),
    ("/api/me/phone/verify", {"code": "12345"}, "invalid_input", "code"),
    ("/api/me/phone/verify", {"code": 123456}, "invalid_input", "code"),
    ("/api/me/phone/verify", {"code": "12345a"}, "invalid_input", "code"),
    ("/api/invites/sms", {"to": "nope", "clubId": "c1"}, "invalid_phone_number", "to"),
    ("/api/invites/sms", {"to": BOB_NUMBER}, "invalid_input", None),
    ("/api/invites/sms", {"to": BOB_NUMBER, "clubId": "c", "meetingId": "m"},
     "invalid_input", None),
    ("/api/invites/sms", {"to": BOB_NUMBER, "clubId": "a/b"}, "invalid_input", "clubId"),
]
# fmt: on


@pytest.mark.parametrize(("path", "body", "code", "field"), BAD_INPUT)
async def test_bad_input_gets_a_problem_and_changes_nothing(
    counting_client: Client, path: str, body: dict[str, Any], code: str, field: str | None
) -> None:
    alice = counting_client.login("alice", "Alice")
    resp = await counting_client.request("POST", path, headers=alice, json_body=body)
    assert resp.status == 400, resp.body
    problem = resp.json()
    assert problem["code"] == code
    assert problem.get("field") == field
    calls = spy_of(counting_client.runtime.adapters.store).calls
    assert not {"create", "replace", "upsert", "delete"} & set(calls)
    assert (await counting_client.request("GET", "/api/dev/outbox")).json()["items"] == []


async def test_erase_removes_phone_records_and_frees_the_number(client: Client) -> None:
    alice, bob = client.login("alice", "Alice"), client.login("bob", "Bob")
    sent = await client.request(
        "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
    )
    code = await outbox_code(client, ALICE_NUMBER)
    await client.request("POST", "/api/me/phone/verify", headers=alice, json_body={"code": code})
    await verify_number(client, bob, BOB_NUMBER)
    store = client.runtime.adapters.store
    message = message_key(sent.json()["messageId"])
    assert await store.read(PHONE, message, "message") is not None

    assert (await client.request("DELETE", "/api/me", headers=alice)).status == 204
    await client.runtime.reactor.drain()
    assert await store.read(PHONE, "alice", "phone") is None
    assert await store.read(PHONE, message, "message") is None
    record = await store.read(PHONE, number_key(ALICE_NUMBER), "number")
    assert record is None or record["ownerId"] is None
    # Bob's are untouched.
    assert await store.read(PHONE, "bob", "phone") is not None
    bob_record = await store.read(PHONE, number_key(BOB_NUMBER), "number")
    assert bob_record is not None
    assert bob_record["ownerId"] == "bob"


async def test_store_down_is_503_and_sends_nothing(counting_client: Client) -> None:
    alice = counting_client.login("alice", "Alice")
    spy_of(counting_client.runtime.adapters.store).fail["read_many"] = store_down()
    resp = await counting_client.request(
        "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
    )
    assert resp.status == 503
    assert resp.headers["retry-after"] == "3"
    spy_of(counting_client.runtime.adapters.store).fail.clear()
    assert (await counting_client.request("GET", "/api/dev/outbox")).json()["items"] == []


class DownSender:
    """An SMS service that is down."""

    async def send(self, to: str, message: str, *, tag: str) -> Any:
        raise DependencyUnavailable("sms", retry_after=7)

    async def close(self) -> None:
        pass


async def test_sms_down_is_503_and_does_not_count_against_the_limits(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, sms_sender=DownSender())
    set_runtime(rt)
    try:
        client = Client(rt)
        alice = client.login("alice", "Alice")
        for _ in range(2):
            resp = await client.request(
                "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
            )
            assert resp.status == 503  # never a 429: the failed send did not count
            assert resp.headers["retry-after"] == "7"
        doc = await rt.adapters.store.read(PHONE, "alice", "phone")
        assert doc is not None
        assert doc["codeSends"] == []
        assert doc["pending"] is None
    finally:
        set_runtime(None)
        await rt.close()


@pytest.fixture
async def no_sms(tmp_path: Path) -> AsyncIterator[Client]:
    """SMS not configured (in Azure without SMS_FROM): the runtime has no SMS sender."""
    rt = make_runtime(tmp_path)
    rt = Runtime(rt.settings, dataclasses.replace(rt.adapters, sms_sender=None))
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_without_sms_the_routes_are_404_sms_not_configured(
    no_sms: Client, method: str, path: str, body: dict[str, str]
) -> None:
    alice = no_sms.login("alice", "Alice")
    resp = await no_sms.request(method, path, headers=alice, json_body=body)
    if path.endswith("verify"):
        assert resp.status == 400  # no code was ever sent
        return
    assert resp.status == 404
    assert resp.json()["code"] == "sms_not_configured"
    outbox = await no_sms.request("GET", "/api/dev/outbox")
    assert outbox.status == 404


# --- invitations --------------------------------------------------------------------------------


class Memberships:
    """Stands in for the clubs and meetings services' checks: who belongs to what."""

    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members

    async def require(self, user_id: str, object_id: str) -> None:
        if user_id not in self.members.get(object_id, set()):
            raise NotFound("No such club.")


@pytest.fixture
async def inviting(tmp_path: Path) -> AsyncIterator[Client]:
    async for client in inviting_client(
        tmp_path, {"club1": {"alice"}, "meet1": {"alice", "carol"}}
    ):
        yield client


async def inviting_client(tmp_path: Path, members: dict[str, set[str]]) -> AsyncIterator[Client]:
    rt = make_runtime(tmp_path, SMS_DAILY_LIMIT="2", PUBLIC_APP_URL="https://app.example")
    access = Memberships(members)
    rt.__dict__["phone"] = PhoneService(
        rt.adapters.store,
        rt.adapters.sms_sender,
        lambda: rt.identity,
        daily_invites=2,
        app_url="https://app.example",
        club_access=access.require,
        meeting_access=access.require,
    )
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.close()


async def test_alice_invites_bob_to_her_clubs_call(inviting: Client) -> None:
    alice = inviting.login("alice", "Alice")
    resp = await inviting.request(
        "POST", "/api/invites/sms", headers=alice, json_body={"to": BOB_NUMBER, "clubId": "club1"}
    )
    assert resp.status == 202
    assert set(resp.json()) == {"messageId", "status"}
    item = (await inviting.request("GET", "/api/dev/outbox")).json()["items"][0]
    assert item["to"] == BOB_NUMBER
    assert item["tag"] == "invite"
    assert "https://app.example/?clubId=club1" in item["message"]
    assert item["messageId"] == resp.json()["messageId"]


async def test_only_members_and_participants_invite(inviting: Client) -> None:
    bob, carol = inviting.login("bob", "Bob"), inviting.login("carol", "Carol")
    for who, body in [
        (bob, {"to": BOB_NUMBER, "clubId": "club1"}),
        (bob, {"to": BOB_NUMBER, "meetingId": "meet1"}),
        (carol, {"to": BOB_NUMBER, "clubId": "club1"}),
        (carol, {"to": BOB_NUMBER, "clubId": "nope"}),
    ]:
        resp = await inviting.request("POST", "/api/invites/sms", headers=who, json_body=body)
        assert resp.status == 404
    ok = await inviting.request(
        "POST",
        "/api/invites/sms",
        headers=carol,
        json_body={"to": BOB_NUMBER, "meetingId": "meet1"},
    )
    assert ok.status == 202
    items = (await inviting.request("GET", "/api/dev/outbox")).json()["items"]
    assert len(items) == 1
    assert "meetingId=meet1" in items[0]["message"]


async def test_invites_are_limited_per_day(inviting: Client) -> None:
    alice, carol = inviting.login("alice", "Alice"), inviting.login("carol", "Carol")
    body = {"to": BOB_NUMBER, "meetingId": "meet1"}
    for _ in range(2):
        ok = await inviting.request("POST", "/api/invites/sms", headers=alice, json_body=body)
        assert ok.status == 202
    over = await inviting.request("POST", "/api/invites/sms", headers=alice, json_body=body)
    assert over.status == 429
    assert int(over.headers["retry-after"]) > 60
    # Carol's allowance is her own.
    ok = await inviting.request("POST", "/api/invites/sms", headers=carol, json_body=body)
    assert ok.status == 202


async def test_a_number_gets_few_invitations_whoever_sends_them(tmp_path: Path) -> None:
    """Three senders fill a number's day; a fourth is refused for that number only, with a 429
    that does not say "to this number"."""
    users = ["alice", "bob", "carol", "dave"]
    async for inviting in inviting_client(tmp_path, {"club1": set(users)}):
        await _few_invitations(inviting, users)


async def _few_invitations(inviting: Client, users: list[str]) -> None:
    from switchboard.services.phone import INVITES_PER_NUMBER

    headers = [inviting.login(u, u.title()) for u in users]
    body = {"to": BOB_NUMBER, "clubId": "club1"}
    for who in headers[:INVITES_PER_NUMBER]:
        ok = await inviting.request("POST", "/api/invites/sms", headers=who, json_body=body)
        assert ok.status == 202
    capped = await inviting.request("POST", "/api/invites/sms", headers=headers[3], json_body=body)
    assert capped.status == 429
    assert "number" not in capped.json()["detail"].lower()
    other = await inviting.request(
        "POST",
        "/api/invites/sms",
        headers=headers[3],
        json_body={"to": ALICE_NUMBER, "clubId": "club1"},
    )
    assert other.status == 202
    items = (await inviting.request("GET", "/api/dev/outbox")).json()["items"]
    assert [i["to"] for i in items].count(BOB_NUMBER) == INVITES_PER_NUMBER


# --- Event Grid: sms_events ---------------------------------------------------------------------


def sms_events_function() -> Any:
    _, handler = app_server().event_grid["sms_events"]
    return handler


def event(event_type: str, data: Any, **envelope: Any) -> func.EventGridEvent:
    return func.EventGridEvent(
        id=envelope.get("id", "e1"),
        data=data,
        topic="/subscriptions/x/resourceGroups/rg/providers/Microsoft.Communication/"
        "communicationServices/acs",
        subject=envelope.get("subject", "/phonenumber/15555555555"),
        event_type=event_type,
        event_time=None,
        data_version="1.0",
    )


def delivery_report(
    message_id: str,
    status: str,
    *,
    pascal: bool = False,
    received: str = "2020-09-18T00:22:20.2855749+00:00",
) -> dict[str, Any]:
    """Microsoft.Communication.SMSDeliveryReportReceived data, as the ACS event schema shows."""
    data = {
        "messageId": message_id,
        "from": "15555555555",
        "to": "+15555555555",
        "deliveryStatus": status,
        "deliveryStatusDetails": "No error.",
        "receivedTimestamp": received,
        "deliveryAttempts": [
            {
                "timestamp": "2020-09-18T00:22:14.9315918+00:00",
                "segmentsSucceeded": 1,
                "segmentsFailed": 0,
            }
        ],
        "tag": "verification",
    }
    if pascal:
        return {k[:1].upper() + k[1:]: v for k, v in data.items()}
    return data


def sms_received(
    sender: str, message: str, *, pascal: bool = False, received: str = "2020-09-18T00:27:45.32Z"
) -> dict[str, Any]:
    """Microsoft.Communication.SMSReceived data, as the ACS event schema shows."""
    data = {
        "messageId": "Incoming_20200918002745d29ebbea-3341-4466-9690-0a03af35228e",
        "from": sender,
        "to": "15555555555",
        "message": message,
        "receivedTimestamp": received,
    }
    if pascal:
        return {k[:1].upper() + k[1:]: v for k, v in data.items()}
    return data


@pytest.mark.parametrize("pascal", [False, True])
async def test_delivery_reports_update_the_message(inviting: Client, pascal: bool) -> None:
    alice = inviting.login("alice", "Alice")
    sent = await inviting.request(
        "POST", "/api/invites/sms", headers=alice, json_body={"to": BOB_NUMBER, "clubId": "club1"}
    )
    message_id = sent.json()["messageId"]
    fn = sms_events_function()
    await fn(
        event(
            "Microsoft.Communication.SMSDeliveryReportReceived",
            delivery_report(message_id, "Delivered", pascal=pascal),
        )
    )
    doc = await inviting.runtime.adapters.store.read(PHONE, message_key(message_id), "message")
    assert doc is not None
    assert doc["status"] == "delivered"
    assert doc["userId"] == "alice"
    assert BOB_NUMBER not in json.dumps(doc)  # masked


@pytest.mark.parametrize("pascal", [False, True])
async def test_stop_opts_out_and_start_opts_back_in(inviting: Client, pascal: bool) -> None:
    alice = inviting.login("alice", "Alice")
    body = {"to": BOB_NUMBER, "clubId": "club1"}
    fn = sms_events_function()
    await fn(
        event(
            "Microsoft.Communication.SMSReceived", sms_received(BOB_NUMBER, " stop ", pascal=pascal)
        )
    )
    refused = await inviting.request("POST", "/api/invites/sms", headers=alice, json_body=body)
    assert refused.status == 409
    assert refused.json()["code"] == "recipient_opted_out"
    assert (await inviting.request("GET", "/api/dev/outbox")).json()["items"] == []
    await fn(
        event(
            "Microsoft.Communication.SMSReceived", sms_received(BOB_NUMBER, "START", pascal=pascal)
        )
    )
    ok = await inviting.request("POST", "/api/invites/sms", headers=alice, json_body=body)
    assert ok.status == 202


async def test_delivery_reports_repeated_or_out_of_order_keep_the_latest(
    inviting: Client,
) -> None:
    """Event Grid delivers at least once and in no set order: a report repeated changes
    nothing, and one older than what the message already says does not overwrite it."""
    alice = inviting.login("alice", "Alice")
    sent = await inviting.request(
        "POST", "/api/invites/sms", headers=alice, json_body={"to": BOB_NUMBER, "clubId": "club1"}
    )
    message_id = sent.json()["messageId"]
    fn = sms_events_function()
    kind = "Microsoft.Communication.SMSDeliveryReportReceived"
    late = delivery_report(message_id, "Delivered", received="2026-11-23T12:00:05.1234567Z")
    early = delivery_report(message_id, "Failed", received="2026-11-23T12:00:01Z")
    for data in (late, late, early, {**early, "receivedTimestamp": "not a time"}):
        await fn(event(kind, data))
        doc = await inviting.runtime.adapters.store.read(PHONE, message_key(message_id), "message")
        assert doc is not None
        assert doc["status"] == "delivered"


async def test_a_start_older_than_the_stop_does_not_opt_back_in(inviting: Client) -> None:
    alice = inviting.login("alice", "Alice")
    fn = sms_events_function()
    kind = "Microsoft.Communication.SMSReceived"
    await fn(event(kind, sms_received(BOB_NUMBER, "STOP", received="2026-11-23T12:00:05Z")))
    await fn(event(kind, sms_received(BOB_NUMBER, "START", received="2026-11-23T12:00:01Z")))
    refused = await inviting.request(
        "POST", "/api/invites/sms", headers=alice, json_body={"to": BOB_NUMBER, "clubId": "club1"}
    )
    assert refused.status == 409
    assert refused.json()["code"] == "recipient_opted_out"
    # A newer START does.
    await fn(event(kind, sms_received(BOB_NUMBER, "START", received="2026-11-23T12:00:09Z")))
    ok = await inviting.request(
        "POST", "/api/invites/sms", headers=alice, json_body={"to": BOB_NUMBER, "clubId": "club1"}
    )
    assert ok.status == 202


async def test_an_inbound_senders_text_cannot_forge_a_log_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = "+14255550123\nCRITICAL root: forged line " + "9" * 500
    await sms_events_function()(
        event("Microsoft.Communication.SMSReceived", sms_received(forged, "hello"))
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "switchboard.phone"]
    assert lines
    assert all("\n" not in line and len(line) < 200 for line in lines), lines
    assert "4255550123" not in caplog.text


async def test_an_opted_out_number_gets_no_code_either(client: Client) -> None:
    fn = sms_events_function()
    await fn(
        event("Microsoft.Communication.SMSReceived", sms_received(ALICE_NUMBER, "UNSUBSCRIBE"))
    )
    alice = client.login("alice", "Alice")
    resp = await client.request(
        "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
    )
    assert resp.status == 409
    assert resp.json()["code"] == "recipient_opted_out"


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("Microsoft.Communication.ChatMessageReceived", {"messageId": "x"}),
        ("Microsoft.Communication.SMSDeliveryReportReceived", "not an object"),
        ("Microsoft.Communication.SMSDeliveryReportReceived", {"messageId": 7}),
        ("Microsoft.Communication.SMSDeliveryReportReceived", delivery_report("unknown", "Failed")),
        ("Microsoft.Communication.SMSReceived", {"from": ["+1"], "message": "STOP"}),
        ("Microsoft.Communication.SMSReceived", {"from": "garbage", "message": "STOP"}),
        ("Microsoft.Communication.SMSReceived", sms_received(ALICE_NUMBER, "hello there")),
        ("", None),
    ],
)
async def test_unknown_or_malformed_events_are_ignored(
    counting_client: Client, event_type: str, data: Any
) -> None:
    await sms_events_function()(event(event_type, data))  # does not raise
    calls = spy_of(counting_client.runtime.adapters.store).calls
    assert not {"create", "replace", "upsert", "delete"} & set(calls)


async def test_a_store_outage_makes_event_grid_retry(counting_client: Client) -> None:
    spy_of(counting_client.runtime.adapters.store).fail["read"] = store_down()
    with pytest.raises(DependencyUnavailable):
        await sms_events_function()(
            event("Microsoft.Communication.SMSReceived", sms_received(ALICE_NUMBER, "STOP"))
        )


async def test_events_reach_the_function_through_the_devserver_path(inviting: Client) -> None:
    """POST /runtime/webhooks/eventgrid?functionName=sms_events, as Event Grid delivers them."""
    import httpx

    alice = inviting.login("alice", "Alice")
    sent = await inviting.request(
        "POST", "/api/invites/sms", headers=alice, json_body={"to": BOB_NUMBER, "clubId": "club1"}
    )
    batch = [
        {
            "id": "1",
            "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
            "subject": "/phonenumber/15555555555",
            "dataVersion": "1.0",
            "eventTime": "2020-09-18T00:22:20Z",
            "data": delivery_report(sent.json()["messageId"], "Failed"),
        },
        {
            "id": "2",
            "eventType": "Microsoft.Communication.SMSReceived",
            "subject": "/x",
            "dataVersion": "1.0",
            "eventTime": "2020-09-18T00:27:47Z",
            "data": "malformed",
        },
        {
            "id": "3",
            "eventType": "Microsoft.Communication.SMSReceived",
            "subject": "/x",
            "dataVersion": "1.0",
            "eventTime": "2020-09-18T00:27:47Z",
            "data": sms_received(BOB_NUMBER, "STOP"),
        },
    ]
    transport = httpx.ASGITransport(app=app_server())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        resp = await http.post(
            "/runtime/webhooks/eventgrid",
            params={"functionName": "sms_events"},
            json=batch,
            headers={"aeg-event-type": "Notification"},
        )
    assert resp.status_code == 200
    doc = await inviting.runtime.adapters.store.read(
        PHONE, message_key(sent.json()["messageId"]), "message"
    )
    assert doc is not None
    assert doc["status"] == "failed"
    record = await inviting.runtime.adapters.store.read(PHONE, number_key(BOB_NUMBER), "number")
    assert record is not None
    assert record["optedOut"] is True


async def test_a_batch_with_an_event_that_is_no_object_still_delivers_the_rest(
    inviting: Client,
) -> None:
    """One malformed entry never fails the batch (Event Grid would redeliver all of it, and the
    bad entry would fail again forever): it is skipped, the events around it are delivered."""
    import httpx

    stop = {
        "id": "e1",
        "topic": "/x",
        "eventType": "Microsoft.Communication.SMSReceived",
        "subject": "/x",
        "dataVersion": "1.0",
        "eventTime": "2020-09-18T00:27:47Z",
        "data": sms_received(BOB_NUMBER, "STOP"),
    }
    transport = httpx.ASGITransport(app=app_server())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        resp = await http.post(
            "/runtime/webhooks/eventgrid",
            params={"functionName": "sms_events"},
            json=[5, "x", None, stop],
            headers={"aeg-event-type": "Notification"},
        )
    assert resp.status_code == 200
    record = await inviting.runtime.adapters.store.read(PHONE, number_key(BOB_NUMBER), "number")
    assert record is not None
    assert record["optedOut"] is True


async def test_the_local_outbox_survives_a_restart(tmp_path: Path) -> None:
    outbox = LocalSmsOutbox(tmp_path)
    sent = await outbox.send(ALICE_NUMBER, "hello", tag="verification")
    await outbox.close()
    again = LocalSmsOutbox(tmp_path)
    messages = await again.messages()
    await again.close()
    assert [m.message_id for m in messages] == [sent.message_id]
    assert messages[0].to == ALICE_NUMBER


async def test_operations_per_verification_and_invitation(tmp_path: Path) -> None:
    """The counts bench/phone.py reports, pinned: a code send is 5 store operations and 1 SMS,
    an invitation 5 and 1 (beside the club's own membership check; one of the 5 counts it
    against the recipient's number)."""
    from switchboard.adapters.sqlite_store import SqliteStore
    from tests.proxies import spy

    rt = make_runtime(
        tmp_path,
        store=spy(SqliteStore(tmp_path / "s.sqlite")),
        sms_sender=spy(LocalSmsOutbox(tmp_path)),
    )
    access = Memberships({"club1": {"alice"}})
    rt.__dict__["phone"] = PhoneService(
        rt.adapters.store,
        rt.adapters.sms_sender,
        lambda: rt.identity,
        app_url="https://app.example",
        club_access=access.require,
    )
    set_runtime(rt)
    try:
        client = Client(rt)
        alice = client.login("alice", "Alice")
        await client.request("GET", "/api/me", headers=alice)
        store, sms = spy_of(rt.adapters.store), spy_of(rt.adapters.sms_sender)
        store.calls.clear()
        await client.request(
            "POST", "/api/me/phone", headers=alice, json_body={"phoneNumber": ALICE_NUMBER}
        )
        assert (sum(store.calls.values()), sms.calls["send"]) == (5, 1)
        store.calls.clear()
        await client.request(
            "POST",
            "/api/invites/sms",
            headers=alice,
            json_body={"to": BOB_NUMBER, "clubId": "club1"},
        )
        assert (sum(store.calls.values()), sms.calls["send"]) == (5, 2)
    finally:
        set_runtime(None)
        await rt.close()


async def test_pascal_case_envelopes_reach_the_function_through_the_devserver(
    client: Client,
) -> None:
    import httpx

    batch = [
        {
            "Id": "1",
            "EventType": "Microsoft.Communication.SMSReceived",
            "Subject": "/x",
            "DataVersion": "1.0",
            "EventTime": "not a time",
            "Data": sms_received(ALICE_NUMBER, "STOP", pascal=True),
        },
    ]
    transport = httpx.ASGITransport(app=app_server())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        resp = await http.post(
            "/runtime/webhooks/eventgrid",
            params={"functionName": "sms_events"},
            json=batch,
            headers={"aeg-event-type": "Notification"},
        )
    assert resp.status_code == 200
    record = await client.runtime.adapters.store.read(PHONE, number_key(ALICE_NUMBER), "number")
    assert record is not None
    assert record["optedOut"] is True


async def test_a_friend_gets_the_verified_number_as_pstn_to_and_a_stranger_nothing(
    tmp_path: Path,
) -> None:
    rt = make_runtime(tmp_path, PSTN_CALLER_ID="+18005550100")
    set_runtime(rt)
    try:
        client = Client(rt)
        alice, bob, carol = (client.login(u, u.title()) for u in ("alice", "bob", "carol"))
        for who in (alice, bob, carol):
            await client.request("GET", "/api/me", headers=who)  # users exist from a first call
        await verify_number(client, alice, ALICE_NUMBER)
        assert (await client.request("PUT", "/api/friends/alice", headers=bob)).status == 200
        assert (await client.request("PUT", "/api/friends/bob", headers=alice)).status == 200
        info = await client.request("GET", "/api/friends/alice/call-info", headers=bob)
        assert info.json()["pstn"] == {"from": "+18005550100", "to": ALICE_NUMBER}
        stranger = await client.request("GET", "/api/friends/alice/call-info", headers=carol)
        assert stranger.status == 404
        assert ALICE_NUMBER not in stranger.body.decode()
    finally:
        set_runtime(None)
        await rt.close()


async def test_alice_invites_bob_to_her_real_clubs_call_and_outsiders_cannot(
    client: Client,
) -> None:
    """Wired to the clubs capability: members invite; a non-member and an unknown club are 404."""
    alice, carol = client.login("alice", "Alice"), client.login("carol", "Carol")
    club = await client.request(
        "POST", "/api/clubs", headers=alice, json_body={"name": "Chess", "visibility": "invite"}
    )
    assert club.status == 201
    club_id = club.json()["clubId"]
    sent = await client.request(
        "POST", "/api/invites/sms", headers=alice, json_body={"to": BOB_NUMBER, "clubId": club_id}
    )
    assert sent.status == 202, sent.body
    [item] = (await client.request("GET", "/api/dev/outbox")).json()["items"]
    assert item["to"] == BOB_NUMBER
    assert f"http://localhost:7071/?clubId={club_id}" in item["message"]
    for who, target in [(carol, club_id), (alice, "no-such-club")]:
        resp = await client.request(
            "POST", "/api/invites/sms", headers=who, json_body={"to": BOB_NUMBER, "clubId": target}
        )
        assert resp.status == 404
    assert len((await client.request("GET", "/api/dev/outbox")).json()["items"]) == 1


async def test_meeting_invitations_come_from_the_organizer_and_invitees_only(
    client: Client,
) -> None:
    """Wired to the meetings capability: organizer and invitees invite; anyone else gets 404."""
    alice, bob, carol = (client.login(u, u.title()) for u in ("alice", "bob", "carol"))
    for who in (alice, bob, carol):
        await client.request("GET", "/api/me", headers=who)  # users exist from a first call
    meeting = await client.request(
        "POST",
        "/api/meetings",
        headers=alice,
        json_body={
            "subject": "Standup",
            "start": "2026-12-01T09:00:00+00:00",
            "end": "2026-12-01T09:30:00+00:00",
            "invitees": ["bob"],
        },
    )
    assert meeting.status == 201, meeting.body
    meeting_id = meeting.json()["meetingId"]
    body = {"to": BOB_NUMBER, "meetingId": meeting_id}
    for who in (alice, bob):
        resp = await client.request("POST", "/api/invites/sms", headers=who, json_body=body)
        assert resp.status == 202, resp.body
    outsider = await client.request("POST", "/api/invites/sms", headers=carol, json_body=body)
    assert outsider.status == 404
    unknown = await client.request(
        "POST", "/api/invites/sms", headers=alice, json_body={"to": BOB_NUMBER, "meetingId": "m1"}
    )
    assert unknown.status == 404
    items = (await client.request("GET", "/api/dev/outbox")).json()["items"]
    assert len(items) == 2
    assert f"http://localhost:7071/?meetingId={meeting_id}" in items[0]["message"]


async def test_erase_drops_the_users_messages_from_the_dev_outbox(tmp_path: Path) -> None:
    """The local outbox is ours to keep: after Bob's erase it holds neither the messages he
    caused (his code, his invitation to Carol) nor those to his number (Alice's invitation);
    Alice's and Carol's own messages (a third user) stay."""
    async for client in inviting_client(tmp_path, {"club1": {"alice", "bob", "carol"}}):
        alice, bob, carol = (client.login(u, u.title()) for u in ("alice", "bob", "carol"))
        await verify_number(client, bob, BOB_NUMBER)
        await verify_number(client, carol, CAROL_NUMBER)
        for who, to in ((alice, BOB_NUMBER), (bob, CAROL_NUMBER), (alice, ALICE_NUMBER)):
            resp = await client.request(
                "POST", "/api/invites/sms", headers=who, json_body={"to": to, "clubId": "club1"}
            )
            assert resp.status == 202
        before = (await client.request("GET", "/api/dev/outbox")).json()["items"]
        assert len(before) == 5
        assert (await client.request("DELETE", "/api/me", headers=bob)).status == 204
        await client.runtime.reactor.drain()  # the erasure reconciler purges the outbox
        after = (await client.request("GET", "/api/dev/outbox")).json()["items"]
        assert sorted((i["to"], i["tag"]) for i in after) == [
            (ALICE_NUMBER, "invite"),
            (CAROL_NUMBER, "verification"),
        ]
        assert all("Bob" not in i["message"] for i in after)
