"""The phone service's rules with a clock the test moves: code expiry, the resend and daily
limits per user and per number, a number changing hands, and the SMS settings' start-up checks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from switchboard import errors
from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import ConfigurationError
from switchboard.ports import DocumentStore, SmsSendResult
from switchboard.services import phone as phone_module
from switchboard.services.caller import Caller
from switchboard.services.identity import IdentityService, TokenPolicy
from switchboard.services.phone import (
    CODE_ATTEMPTS,
    CODES_PER_NUMBER,
    CODES_PER_REQUESTER,
    INVITES_PER_NUMBER,
    PHONE,
    PhoneService,
    number_key,
    parse_number,
)
from switchboard.settings import Settings
from tests.fakes import FakeIdentityProvider

A, B, C = "+14255550123", "+14255550199", "+442071838750"


@dataclass
class RecordingSender:
    """An SMS service that accepts everything and remembers it."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, to: str, message: str, *, tag: str) -> SmsSendResult:
        self.sent.append((to, message, tag))
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

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    service: PhoneService
    identity: IdentityService
    sender: RecordingSender
    clock: Clock
    store: SqliteStore


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = SqliteStore(tmp_path / "s.sqlite")
    clock = Clock()
    sender = RecordingSender()
    identity = IdentityService(store, FakeIdentityProvider(), TokenPolicy(("chat",), 60))
    service = PhoneService(store, sender, lambda: identity, clock=clock)
    yield World(service, identity, sender, clock, store)
    await store.close()


def caller(user_id: str) -> Caller:
    return Caller(user_id=user_id, name=user_id.title())


async def test_a_code_expires_after_ten_minutes(world: World) -> None:
    alice = caller("alice")
    await world.service.start_verification(alice, A)
    world.clock.advance(minutes=10)
    with pytest.raises(errors.InvalidCode):
        await world.service.verify(alice, world.sender.last_code())
    world.clock.advance(minutes=1)
    await world.service.start_verification(alice, A)
    view = await world.service.verify(alice, world.sender.last_code())
    assert view.phone_number == A
    assert view.phone_verified


async def test_one_code_a_minute_and_five_a_day_per_user(world: World) -> None:
    alice = caller("alice")
    numbers = [A, B, C, "+14255550100", "+14255550101", "+14255550102"]
    await world.service.start_verification(alice, numbers[0])
    with pytest.raises(errors.TooManyRequests) as soon:
        await world.service.start_verification(alice, numbers[1])
    assert soon.value.retry_after == 61
    world.clock.advance(seconds=30)
    with pytest.raises(errors.TooManyRequests) as later:
        await world.service.start_verification(alice, numbers[1])
    assert later.value.retry_after == 31
    for number in numbers[1:5]:
        world.clock.advance(minutes=2)
        await world.service.start_verification(alice, number)
    world.clock.advance(minutes=2)
    with pytest.raises(errors.TooManyRequests) as daily:
        await world.service.start_verification(alice, numbers[5])
    assert daily.value.retry_after > 23 * 3600
    assert len(world.sender.sent) == 5
    world.clock.advance(days=1)
    await world.service.start_verification(alice, numbers[5])


async def test_a_number_gets_ten_codes_a_day_whoever_asks(world: World) -> None:
    """The flood limit holds across requesters: ten users, one code each, fill the day."""
    for i in range(CODES_PER_NUMBER):
        await world.service.start_verification(caller(f"user{i}"), A)
        world.clock.advance(minutes=2)
    with pytest.raises(errors.TooManyRequests) as full:
        await world.service.start_verification(caller("user99"), A)
    assert "number" not in full.value.detail
    assert full.value.retry_after > 23 * 3600
    assert len(world.sender.sent) == CODES_PER_NUMBER
    world.clock.advance(days=1)
    await world.service.start_verification(caller("user99"), A)


async def test_a_stranger_cannot_lock_the_numbers_owner_out(world: World) -> None:
    """Before: five requests by one stranger, one a minute, gave the owner 429 for a day. Now a
    requester spends at most CODES_PER_REQUESTER of a number's codes; the owner (and a third
    user) still get theirs, and the stranger's 429 names no number."""
    mallory, alice, carol = caller("mallory"), caller("alice"), caller("carol")
    for _ in range(CODES_PER_REQUESTER):
        await world.service.start_verification(mallory, A)
        world.clock.advance(minutes=2)
    with pytest.raises(errors.TooManyRequests) as refused:
        await world.service.start_verification(mallory, A)
    assert "number" not in refused.value.detail
    assert refused.value.retry_after > 23 * 3600
    await world.service.start_verification(mallory, B)  # his own allowance is left for others
    world.clock.advance(minutes=2)
    await world.service.start_verification(alice, A)
    assert (await world.service.verify(alice, world.sender.last_code())).phone_number == A
    world.clock.advance(minutes=2)
    await world.service.start_verification(carol, A)
    assert [to for to, _, _ in world.sender.sent].count(A) == CODES_PER_REQUESTER + 2


def inviting(world: World, **kwargs: Any) -> PhoneService:
    async def member(user_id: str, object_id: str) -> None:
        return None

    return PhoneService(
        world.store,
        world.sender,
        lambda: world.identity,
        app_url="https://app.example",
        club_access=member,
        clock=world.clock,
        **kwargs,
    )


async def test_a_number_gets_at_most_three_invitations_a_day_whoever_sends(world: World) -> None:
    """Before: three new accounts sent 60 invitations to one number. Now the number's cap
    holds across senders; each sender's own allowance is untouched for other numbers."""
    service = inviting(world)
    senders = [caller(name) for name in ("alice", "bob", "carol", "dave")]
    for who in senders[:INVITES_PER_NUMBER]:
        await service.invite(who, B, "club1", None)
    with pytest.raises(errors.TooManyRequests) as capped:
        await service.invite(senders[-1], B, "club1", None)
    assert "number" not in capped.value.detail.lower()
    assert capped.value.retry_after > 23 * 3600
    await service.invite(senders[-1], C, "club1", None)  # dave's allowance was not spent
    user = await world.store.read(PHONE, "dave", "phone")
    assert user is not None
    assert len(user["inviteSends"]) == 1
    assert [to for to, _, _ in world.sender.sent].count(B) == INVITES_PER_NUMBER
    world.clock.advance(days=1, seconds=1)
    await service.invite(senders[-1], B, "club1", None)


PUMPING_TARGETS = [
    "+19005550100",  # US premium rate
    "+448712345678",  # UK shared cost (087)
    "+448431234567",  # UK shared cost (084)
    "+447011234567",  # UK personal number (070)
    "+881631234567",  # Global Mobile Satellite System
    "+870773123456",  # Inmarsat
    "+979123456789",  # international premium rate
    "+80012345678",  # international freephone (non-geographic)
]


@pytest.mark.parametrize("number", PUMPING_TARGETS)
async def test_no_code_or_invitation_goes_to_a_pumping_target(world: World, number: str) -> None:
    with pytest.raises(errors.PhoneNumberNotAllowed) as code:
        await world.service.start_verification(caller("alice"), number)
    assert code.value.field == "phoneNumber"
    with pytest.raises(errors.PhoneNumberNotAllowed) as invite:
        await inviting(world).invite(caller("bob"), number, "club1", None)
    assert invite.value.field == "to"
    assert world.sender.sent == []
    assert await world.store.read(PHONE, number_key(number), "number") is None
    assert await world.store.read(PHONE, "alice", "phone") is None


async def test_sms_goes_only_to_allowed_countries(world: World) -> None:
    service = inviting(world, allowed_countries=frozenset({"US", "CA"}))
    with pytest.raises(errors.PhoneNumberNotAllowed, match="CA, US"):
        await service.start_verification(caller("alice"), C)  # +44
    with pytest.raises(errors.PhoneNumberNotAllowed):
        await service.invite(caller("bob"), C, "club1", None)
    assert world.sender.sent == []
    await service.start_verification(caller("alice"), A)
    await service.invite(caller("bob"), "+16135550123", "club1", None)  # Ottawa
    assert len(world.sender.sent) == 2


@pytest.mark.parametrize(
    ("environ", "countries"),
    [
        ({}, None),  # embedded: the local outbox sends nothing, every country is allowed
        ({"SMS_FROM": "+18005550100", "ACS_ENDPOINT": "https://x"}, {"US"}),
        ({"SMS_FROM": "+442071838750", "ACS_ENDPOINT": "https://x"}, {"GB"}),
        (
            {"SMS_FROM": "+18005550100", "ACS_ENDPOINT": "https://x", "SMS_ALLOWED_COUNTRIES": "*"},
            None,
        ),
        (
            {"SMS_FROM": "12345", "ACS_ENDPOINT": "https://x", "SMS_ALLOWED_COUNTRIES": "us, ca"},
            {"US", "CA"},
        ),
        ({"SMS_ALLOWED_COUNTRIES": "FR"}, {"FR"}),
    ],
)
def test_sms_allowed_countries_default_to_the_senders_country(
    environ: dict[str, str], countries: set[str] | None
) -> None:
    from switchboard.settings import sms_countries

    settings = Settings.from_environ(environ)
    allowed = sms_countries(settings.sms_allowed_countries, settings.sms_from)
    assert allowed == (None if countries is None else frozenset(countries))


@pytest.mark.parametrize(
    "environ",
    [
        {"SMS_FROM": "12345", "ACS_ENDPOINT": "https://x"},  # a short code names no country
        {"SMS_FROM": "Contoso", "ACS_ENDPOINT": "https://x"},
        {"SMS_ALLOWED_COUNTRIES": "USA"},
        {"SMS_ALLOWED_COUNTRIES": "US,XX"},
        {"SMS_ALLOWED_COUNTRIES": ","},
    ],
)
def test_bad_sms_allowed_countries_stop_start_up(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="SMS_ALLOWED_COUNTRIES"):
        Settings.from_environ(environ)


async def test_a_forged_start_from_the_future_does_not_outlive_a_real_stop(world: World) -> None:
    """Before: a START dated 2099 made every later real STOP look older, so it was ignored."""
    kind = phone_module.SMS_RECEIVED
    forged = {"from": A, "message": "START", "receivedTimestamp": "2099-01-01T00:00:00Z"}
    await world.service.handle_event(kind, forged)
    assert await world.store.read(PHONE, number_key(A), "number") is None  # skipped
    stop = {"from": A, "message": "STOP", "receivedTimestamp": world.clock.now.isoformat()}
    await world.service.handle_event(kind, stop)
    with pytest.raises(errors.RecipientOptedOut):
        await world.service.start_verification(caller("alice"), A)
    # A few minutes of clock skew are tolerated.
    soon = (world.clock.now + timedelta(minutes=4)).isoformat()
    await world.service.handle_event(
        kind, {"from": A, "message": "START", "receivedTimestamp": soon}
    )
    await world.service.start_verification(caller("alice"), A)


async def test_a_delivery_report_from_the_future_is_skipped(world: World) -> None:
    sent = await world.service.start_verification(caller("alice"), A)
    report = {
        "messageId": sent.message_id,
        "to": A,
        "deliveryStatus": "Failed",
        "receivedTimestamp": (world.clock.now + timedelta(minutes=6)).isoformat(),
    }
    await world.service.handle_event(phone_module.DELIVERY_REPORT, report)
    doc = await world.store.read(PHONE, phone_module.message_key(sent.message_id), "message")
    assert doc is not None
    assert doc["status"] == "accepted"


async def test_a_sender_blocked_report_opts_the_number_out(world: World) -> None:
    """ACS applies STOP itself and then reports "Sender blocked for given recipient"."""
    sent = await world.service.start_verification(caller("alice"), A)
    await world.service.handle_event(
        phone_module.DELIVERY_REPORT,
        {
            "messageId": sent.message_id,
            "from": "15555555555",
            "to": A.removeprefix("+"),
            "deliveryStatus": "Failed",
            "deliveryStatusDetails": "Sender blocked for given recipient.",
            "receivedTimestamp": world.clock.now.isoformat(),
        },
    )
    record = await world.store.read(PHONE, number_key(A), "number")
    assert record is not None
    assert record["optedOut"] is True
    world.clock.advance(minutes=2)
    with pytest.raises(errors.RecipientOptedOut):
        await world.service.start_verification(caller("bob"), A)
    with pytest.raises(errors.RecipientOptedOut):
        await inviting(world).invite(caller("carol"), A, "club1", None)


async def test_an_inbound_sender_without_plus_is_normalised(world: World) -> None:
    """Microsoft's published SMSReceived sample has "from": "15555555555" (no `+`)."""
    await world.service.handle_event(
        phone_module.SMS_RECEIVED,
        {
            "messageId": "Incoming_20200918002745d29ebbea-3341-4466-9690-0a03af35228e",
            "from": "15555555555",
            "to": "15555555555",
            "message": "STOP",
            "receivedTimestamp": "2020-09-18T00:27:45.32Z",
        },
    )
    record = await world.store.read(PHONE, number_key("+15555555555"), "number")
    assert record is not None
    assert record["optedOut"] is True


async def test_a_new_number_releases_the_old_one(world: World) -> None:
    alice, bob = caller("alice"), caller("bob")
    await world.service.start_verification(alice, A)
    await world.service.verify(alice, world.sender.last_code())
    world.clock.advance(minutes=2)
    await world.service.start_verification(alice, B)
    view = await world.service.verify(alice, world.sender.last_code())
    assert view.phone_number == B
    # A is free again: Bob may verify it.
    await world.service.start_verification(bob, A)
    assert (await world.service.verify(bob, world.sender.last_code())).phone_number == A
    old = await world.store.read(PHONE, number_key(A), "number")
    assert old is not None
    assert old["ownerId"] == "bob"


async def test_a_number_taken_between_code_and_verify_is_409(world: World) -> None:
    alice, bob = caller("alice"), caller("bob")
    await world.service.start_verification(alice, A)
    alice_code = world.sender.last_code()
    world.clock.advance(minutes=2)
    await world.service.start_verification(bob, A)
    await world.service.verify(bob, world.sender.last_code())
    with pytest.raises(errors.PhoneInUse):
        await world.service.verify(alice, alice_code)
    assert (await world.identity.get_profile(alice)).phone_number is None


async def test_a_code_for_a_number_another_user_verified_tells_nothing_until_verify(
    world: World,
) -> None:
    """Asking for a code answers alike whether the number is some user's or not (no oracle);
    the code goes to the number, and only its holder learns, at verify, that it is taken."""
    alice, carol = caller("alice"), caller("carol")
    free = await world.service.start_verification(carol, B)
    await world.service.start_verification(alice, A)
    await world.service.verify(alice, world.sender.last_code())
    world.clock.advance(minutes=2)
    taken = await world.service.start_verification(carol, A)
    assert (taken.status, taken.expires_at is not None) == (free.status, True)
    assert world.sender.sent[-1][0] == A
    with pytest.raises(errors.PhoneInUse):
        await world.service.verify(carol, world.sender.last_code())
    assert (await world.identity.get_profile(carol)).phone_number is None
    assert (await world.identity.get_profile(alice)).phone_number == A


async def test_invitations_reset_after_a_day(world: World) -> None:
    async def member(user_id: str, club_id: str) -> None:
        return None

    service = PhoneService(
        world.store,
        world.sender,
        lambda: world.identity,
        daily_invites=1,
        app_url="https://app.example/",
        club_access=member,
        clock=world.clock,
    )
    alice = caller("alice")
    await service.invite(alice, B, "club1", None)
    assert "https://app.example/?clubId=club1" in world.sender.sent[-1][1]
    with pytest.raises(errors.TooManyRequests):
        await service.invite(alice, B, "club1", None)
    world.clock.advance(days=1, seconds=1)
    await service.invite(alice, B, "club1", None)


async def test_invitations_need_a_public_app_url(world: World) -> None:
    with pytest.raises(errors.SmsNotConfigured):
        await world.service.invite(caller("alice"), B, "club1", None)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("+1 (425) 555-0123", A), ("+44 20 7183 8750", C), ("+4420 7183 8750", C)],
)
def test_numbers_are_normalised_to_e164(raw: str, e164: str) -> None:
    assert parse_number(raw, "to") == e164


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SMS_FROM": "+18005550100"}, "SMS_FROM"),  # ACS needed to send
        ({"SMS_FROM": "not a number!", "ACS_ENDPOINT": "https://x"}, "SMS_FROM"),
        ({"PUBLIC_APP_URL": "http://app.example"}, "PUBLIC_APP_URL"),
    ],
)
def test_sms_settings_refuse_incoherent_values(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_environ(environ)


def test_sms_settings_accept_numbers_short_codes_and_sender_ids() -> None:
    for sender in ("+18005550100", "12345", "Contoso"):
        s = Settings.from_environ(
            {"SMS_FROM": sender, "ACS_ENDPOINT": "https://x", "SMS_ALLOWED_COUNTRIES": "US"}
        )
        assert s.uses_azure_sms
    assert not Settings.from_environ({}).uses_azure_sms


async def test_a_user_named_like_a_numbers_key_does_not_confuse_the_records(world: World) -> None:
    tricky = caller(number_key(A))
    await world.service.start_verification(tricky, A)
    view = await world.service.verify(tricky, world.sender.last_code())
    assert view.phone_number == A
    world.clock.advance(minutes=2)
    await world.service.start_verification(caller("bob"), A)
    with pytest.raises(errors.PhoneInUse):
        await world.service.verify(caller("bob"), world.sender.last_code())
    world.clock.advance(minutes=2)
    await world.service.start_verification(tricky, A)  # both records in one partition
    assert (await world.service.verify(tricky, world.sender.last_code())).phone_number == A


class RoundTrips:
    """The store with a round trip's pause before each operation (as Cosmos has), so requests
    in flight together interleave between their reads and writes."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return await attr(*args, **kwargs)

        return call


async def test_guesses_sent_at_once_are_compared_at_most_five_times(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each guess is counted before it is compared: twenty guesses in flight together get no
    more comparisons with the code than five sent one after another."""
    service = PhoneService(
        cast(DocumentStore, RoundTrips(world.store)),
        world.sender,
        lambda: world.identity,
        clock=world.clock,
    )
    alice = caller("alice")
    await service.start_verification(alice, A)
    code = world.sender.last_code()
    compared: list[str] = []
    real_hash = phone_module._hash_code

    def counting_hash(salt: bytes, guess: str) -> str:
        compared.append(guess)
        return real_hash(salt, guess)

    monkeypatch.setattr(phone_module, "_hash_code", counting_hash)
    wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, 20)]

    async def guess(value: str) -> str:
        try:
            await service.verify(alice, value)
        except (errors.InvalidCode, errors.DependencyUnavailable) as refused:
            return refused.code
        return "verified"

    answers = await asyncio.gather(*(guess(value) for value in [*wrong, code]))
    assert 0 < len(compared) <= CODE_ATTEMPTS, answers
    # The spent attempts are stored: five in all, whoever spends them, and then even the right
    # code is refused.
    while "verified" not in answers and len(compared) < CODE_ATTEMPTS:
        answers.append(await guess(wrong[0]))
    if "verified" not in answers:
        with pytest.raises(errors.InvalidCode):
            await service.verify(alice, code)
    assert len(compared) == CODE_ATTEMPTS or "verified" in answers


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Eve\nYour bank: call +14255550100 now\n\n", "Eve Your bank: call +14255550100 now"),
        ("Eve\r\x1b[2J\u202eevlis\u2028\u200b", "Eve [2J evlis"),
        ("\n\t \u200b", "Someone"),
    ],
)
async def test_an_invitation_carries_the_inviters_name_on_one_plain_line(
    world: World, name: str, shown: str
) -> None:
    """The name comes from the caller's token: control, format and line-breaking characters in
    it cannot shape the SMS the app's number sends (a forged second line, reversed text)."""

    async def member(user_id: str, club_id: str) -> None:
        return None

    service = PhoneService(
        world.store,
        world.sender,
        lambda: world.identity,
        app_url="https://app.example",
        club_access=member,
        clock=world.clock,
    )
    await service.invite(Caller(user_id="eve", name=name), B, "club1", None)
    text = world.sender.sent[-1][1]
    assert all(ch.isprintable() for ch in text), repr(text)
    assert text.startswith(f"{shown} invites you to join a club's call on Switchboard: ")
