"""The abuse limits on both stores (SQLite and the Cosmos-protocol server): a number's code and
invitation limits whoever asks (the conditional writes on the number's record), the opt-out a
"sender blocked" delivery report sets, a future-dated event skipped, and a blocked user who can
neither put the blocker on a meeting nor redeem the blocker's invite code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard import errors
from switchboard.ports import DocumentStore, SmsSendResult
from switchboard.services.caller import Caller
from switchboard.services.phone import (
    CODES_PER_REQUESTER,
    DELIVERY_REPORT,
    INVITES_PER_NUMBER,
    PHONE,
    SMS_RECEIVED,
    PhoneService,
    number_key,
)
from tests.fakes import FakeIdentityProvider

OWNER, OTHER = "+14255550123", "+14255550199"


@dataclass
class Sender:
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, to: str, message: str, *, tag: str) -> SmsSendResult:
        self.sent.append((to, message))
        return SmsSendResult(f"Outgoing_{len(self.sent)}", accepted=True, status_code=202)

    async def close(self) -> None:
        pass

    def last_code(self) -> str:
        match = re.search(r"\b(\d{6})\b", self.sent[-1][1])
        assert match
        return match.group(1)


@dataclass
class Clock:
    now: datetime = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _member(user_id: str, object_id: str) -> None:
    return None


def _phone(store: DocumentStore, sender: Sender, clock: Clock) -> PhoneService:
    from switchboard.services.identity import IdentityService, TokenPolicy

    identity = IdentityService(store, FakeIdentityProvider(), TokenPolicy(("chat",), 60))
    return PhoneService(
        store,
        sender,
        lambda: identity,
        app_url="https://app.example",
        club_access=_member,
        clock=clock,
    )


async def test_sms_limits_hold_across_requesters_on_each_store(store: DocumentStore) -> None:
    sender, clock = Sender(), Clock()
    phone = _phone(store, sender, clock)
    mallory, alice, carol = Caller("mallory", "M"), Caller("alice", "A"), Caller("carol", "C")
    for _ in range(CODES_PER_REQUESTER):
        await phone.start_verification(mallory, OWNER)
        clock.now += timedelta(minutes=2)
    with pytest.raises(errors.TooManyRequests):
        await phone.start_verification(mallory, OWNER)
    await phone.start_verification(alice, OWNER)
    assert (await phone.verify(alice, sender.last_code())).phone_number == OWNER
    clock.now += timedelta(minutes=2)
    await phone.start_verification(carol, OWNER)

    for who in ("u1", "u2", "u3")[:INVITES_PER_NUMBER]:
        await phone.invite(Caller(who, who), OTHER, "club1", None)
    with pytest.raises(errors.TooManyRequests):
        await phone.invite(Caller("u4", "u4"), OTHER, "club1", None)
    await phone.invite(Caller("u4", "u4"), OWNER, "club1", None)


async def test_opt_outs_and_future_events_on_each_store(store: DocumentStore) -> None:
    sender, clock = Sender(), Clock()
    phone = _phone(store, sender, clock)
    await phone.handle_event(
        SMS_RECEIVED,
        {"from": OWNER[1:], "message": "START", "receivedTimestamp": "2099-01-01T00:00:00Z"},
    )
    assert await store.read(PHONE, number_key(OWNER), "number") is None
    sent = await phone.invite(Caller("alice", "Alice"), OWNER, "club1", None)
    await phone.handle_event(
        DELIVERY_REPORT,
        {
            "messageId": sent.message_id,
            "to": OWNER,
            "deliveryStatus": "Failed",
            "deliveryStatusDetails": "Sender blocked for given recipient.",
            "receivedTimestamp": clock.now.isoformat(),
        },
    )
    for who in ("bob", "carol"):
        with pytest.raises(errors.RecipientOptedOut):
            await phone.invite(Caller(who, who), OWNER, "club1", None)
    await phone.handle_event(
        SMS_RECEIVED,
        {
            "from": OWNER[1:],
            "message": "START",
            "receivedTimestamp": (clock.now + timedelta(minutes=1)).isoformat(),
        },
    )
    await phone.invite(Caller("bob", "Bob"), OWNER, "club1", None)


async def test_blocks_look_like_unknown_ids_on_each_store(
    store: DocumentStore, tmp_path: Path
) -> None:
    from tests.conftest import make_runtime

    rt = make_runtime(tmp_path, store=store)
    alice, bob, carol = Caller("alice", "alice"), Caller("bob", "bob"), Caller("carol", "carol")
    for user in (alice, bob, carol):
        await rt.identity.ensure_profile(user)
    friends, meetings = rt.friends, rt.meetings
    code = (await friends.create_invite(alice)).code
    await friends.block(bob, "alice")
    start = datetime(2026, 11, 24, 9, tzinfo=UTC)
    end = start + timedelta(hours=1)
    with pytest.raises(errors.UnknownUsers) as blocked:
        await meetings.schedule(alice, "x", start, end, ["carol", "bob"])
    with pytest.raises(errors.UnknownUsers) as unknown:
        await meetings.schedule(alice, "x", start, end, ["carol", "ghost"])
    assert blocked.value.detail.replace("bob", "ghost") == unknown.value.detail
    assert (await meetings.schedule(carol, "y", start, end, ["bob"])).invitees == ["bob"]
    with pytest.raises(errors.NotFound):
        await friends.redeem_invite(bob, code)
    assert (await friends.redeem_invite(carol, code)).user_id == "alice"


async def test_one_push_tag_key_per_deployment_on_each_store(store: DocumentStore) -> None:
    """Instances starting together make the tag key at once: the first create wins, the others
    read it, and every instance tags a user alike."""
    import asyncio
    import hashlib

    from switchboard.services.push import PushService

    class NoHub:
        async def put_installation(self, installation: object) -> None: ...
        async def update_push_channel(self, installation_id: str, push_channel: str) -> None: ...
        async def delete_installation(self, installation_id: str) -> None: ...
        async def send(self, message: object, tags: object) -> None: ...
        async def close(self) -> None: ...

    services = [PushService(store, NoHub()) for _ in range(4)]
    tags = await asyncio.gather(*(s.user_tag("bob") for s in services))
    assert len(set(tags)) == 1
    assert tags[0] != "u:" + hashlib.sha256(b"bob").hexdigest()[:40]
