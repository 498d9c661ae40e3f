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
from switchboard.services.phone import CODE_ATTEMPTS, PHONE, PhoneService, number_key, parse_number
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


async def test_five_codes_a_day_per_number_whoever_asks(world: World) -> None:
    for i in range(5):
        await world.service.start_verification(caller(f"user{i}"), A)
        world.clock.advance(minutes=2)
    with pytest.raises(errors.TooManyRequests):
        await world.service.start_verification(caller("user9"), A)
    assert len(world.sender.sent) == 5


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
        s = Settings.from_environ({"SMS_FROM": sender, "ACS_ENDPOINT": "https://x"})
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
