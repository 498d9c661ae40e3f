"""docs/phone.md's walkthrough over real HTTP: a code through the local outbox, the
resend limit, a wrong then the right code, a delivery report and a STOP through the devserver's
Event Grid path, and the outbox surviving a restart; the log shows no number and no code."""

from __future__ import annotations

import re

import httpx

from tests.e2e.conftest import DevServerProcess

NUMBER = "+14255550123"


def test_alice_verifies_her_number_through_the_outbox(fresh_devserver: DevServerProcess) -> None:
    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice", "Alice")
    sent = httpx.post(
        f"{base}/api/me/phone", headers=alice, json={"phoneNumber": "+1 425 555 0123"}
    )
    assert sent.status_code == 202
    again = httpx.post(f"{base}/api/me/phone", headers=alice, json={"phoneNumber": NUMBER})
    assert again.status_code == 429
    assert again.headers["retry-after"]
    [item] = httpx.get(f"{base}/api/dev/outbox").json()["items"]
    assert item["to"] == NUMBER
    match = re.search(r"\b(\d{6})\b", item["message"])
    assert match
    code = match.group(1)
    wrong = httpx.post(
        f"{base}/api/me/phone/verify",
        headers=alice,
        json={"code": f"{(int(code) + 1) % 10**6:06d}"},
    )
    assert wrong.status_code == 400
    ok = httpx.post(f"{base}/api/me/phone/verify", headers=alice, json={"code": code})
    assert ok.status_code == 200
    assert ok.json()["phoneNumber"] == NUMBER

    hook = f"{base}/runtime/webhooks/eventgrid"
    events = [
        {
            "id": "1",
            "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
            "subject": "/phonenumber/14255550123",
            "dataVersion": "1.0",
            "eventTime": "2026-11-23T15:40:00Z",
            "data": {"messageId": item["messageId"], "deliveryStatus": "Delivered"},
        },
        {
            "id": "2",
            "eventType": "Microsoft.Communication.SMSReceived",
            "subject": "/x",
            "dataVersion": "1.0",
            "eventTime": "2026-11-23T15:41:00Z",
            "data": {"from": NUMBER, "to": "+10000000000", "message": "STOP"},
        },
    ]
    assert httpx.post(hook, params={"functionName": "sms_events"}, json=events).status_code == 200

    fresh_devserver.restart()
    assert [i["messageId"] for i in httpx.get(f"{base}/api/dev/outbox").json()["items"]] == [
        item["messageId"]
    ]
    assert httpx.get(f"{base}/api/me", headers=alice).json()["phoneVerified"] is True
    log = fresh_devserver.log.read_text()
    assert "+*******0123" in log  # masked, and only so
    assert code not in log
    assert "4255550123" not in log


def test_invitation_links_point_at_this_devservers_port(
    fresh_devserver: DevServerProcess,
) -> None:
    """`make run PORT=7072`: the join link in an SMS invitation opens that server, not 7071."""
    base = fresh_devserver.base_url
    alice = fresh_devserver.login("alice", "Alice")
    club = httpx.post(
        f"{base}/api/clubs", headers=alice, json={"name": "Chess", "visibility": "open"}
    ).json()
    sent = httpx.post(
        f"{base}/api/invites/sms",
        headers=alice,
        json={"to": "+14255550199", "clubId": club["clubId"]},
    )
    assert sent.status_code == 202
    [item] = httpx.get(f"{base}/api/dev/outbox").json()["items"]
    link = f"http://localhost:{fresh_devserver.port}/?clubId={club['clubId']}"
    assert link in item["message"]
