"""The local ACS identity issuer keeps the promises of the IdentityProvider port for real:
ACS-shaped ids and tokens, revoke and delete honoured, state kept across restarts."""

from __future__ import annotations

import asyncio
import re
import stat
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from switchboard.adapters.acs_local import (
    DATABASE_FILE_NAME,
    RESOURCE_LOCATION,
    SIGNING_KEY_FILE_NAME,
    LocalIdentityIssuer,
    TokenExpired,
    TokenIdentityDeleted,
    TokenInvalid,
    TokenRevoked,
)
from switchboard.ports import IdentityNotFound, TeamsTokenRejected
from tests.fakes import TEAMS_APP, TEAMS_OID, entra_token

HOUR = timedelta(hours=1)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class SteppingClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
async def issuer(tmp_path: Path, clock: SteppingClock) -> AsyncIterator[LocalIdentityIssuer]:
    local = LocalIdentityIssuer(tmp_path, clock=clock)
    yield local
    await local.close()


async def test_ids_have_the_acs_shape(issuer: LocalIdentityIssuer) -> None:
    user_id, _ = await issuer.create_user_and_token(["chat"], HOUR)

    assert re.fullmatch(rf"8:acs:{UUID}_{UUID}", user_id)
    assert user_id.startswith(f"8:acs:{issuer.resource_id}_")


async def test_token_carries_the_acs_claims(
    issuer: LocalIdentityIssuer, clock: SteppingClock
) -> None:
    user_id, issued = await issuer.create_user_and_token(["chat", "voip"], timedelta(minutes=90))

    claims = issuer.verify_token(issued.token)
    assert claims["sub"] == user_id
    assert claims["skypeid"] == user_id.removeprefix("8:")
    # The ACS client SDKs read the scopes with split(","): a space-separated claim fails there.
    assert claims["acsScope"].split(",") == ["chat", "voip"]
    assert claims["resourceLocation"] == RESOURCE_LOCATION
    assert claims["resourceId"] == issuer.resource_id
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] == int(clock.now) + 90 * 60
    assert issued.expires_on == datetime.fromtimestamp(claims["exp"], UTC)
    assert issued.expires_on.tzinfo is not None
    assert jwt.get_unverified_header(issued.token)["alg"] == "ES256"


async def test_token_expires(issuer: LocalIdentityIssuer, clock: SteppingClock) -> None:
    _, issued = await issuer.create_user_and_token(["voip"], HOUR)

    clock.now += HOUR.total_seconds() - 1
    issuer.verify_token(issued.token)
    clock.now += 1
    with pytest.raises(TokenExpired):
        issuer.verify_token(issued.token)


async def test_each_call_gives_a_different_token(issuer: LocalIdentityIssuer) -> None:
    user_id, first = await issuer.create_user_and_token(["chat"], HOUR)
    # Same identity, same second (the clock does not move): the tokens still differ.
    second = await issuer.issue_token(user_id, ["chat"], HOUR)
    third = await issuer.issue_token(user_id, ["chat.join", "voip.join"], HOUR)

    assert len({first.token, second.token, third.token}) == 3
    assert issuer.verify_token(third.token)["acsScope"].split(",") == ["chat.join", "voip.join"]
    for issued in (first, second, third):
        assert issuer.verify_token(issued.token)["sub"] == user_id


async def test_revoke_kills_earlier_tokens_only(issuer: LocalIdentityIssuer) -> None:
    user_id, before = await issuer.create_user_and_token(["chat"], HOUR)
    also_before = await issuer.issue_token(user_id, ["voip"], HOUR)
    other_user, others = await issuer.create_user_and_token(["chat"], HOUR)

    # All in the same clock second: only the generation tells before from after.
    await issuer.revoke_tokens(user_id)
    after = await issuer.issue_token(user_id, ["chat"], HOUR)

    for dead in (before, also_before):
        with pytest.raises(TokenRevoked):
            issuer.verify_token(dead.token)
    assert issuer.verify_token(after.token)["sub"] == user_id
    assert issuer.verify_token(others.token)["sub"] == other_user

    await issuer.revoke_tokens(user_id)
    with pytest.raises(TokenRevoked):
        issuer.verify_token(after.token)


async def test_delete_kills_tokens_and_the_identity(issuer: LocalIdentityIssuer) -> None:
    user_id, issued = await issuer.create_user_and_token(["chat"], HOUR)

    await issuer.delete_user(user_id)

    with pytest.raises(TokenIdentityDeleted):
        issuer.verify_token(issued.token)
    with pytest.raises(IdentityNotFound):
        await issuer.issue_token(user_id, ["chat"], HOUR)
    # Idempotent, and revoking a deleted identity is not an error either.
    await issuer.delete_user(user_id)
    await issuer.revoke_tokens(user_id)


async def test_unknown_identity(issuer: LocalIdentityIssuer) -> None:
    unknown = f"8:acs:{issuer.resource_id}_00000000-0000-4000-8000-000000000000"

    with pytest.raises(IdentityNotFound):
        await issuer.issue_token(unknown, ["chat"], HOUR)
    await issuer.delete_user(unknown)
    await issuer.revoke_tokens(unknown)


async def test_refuses_what_acs_refuses(issuer: LocalIdentityIssuer) -> None:
    with pytest.raises(ValueError, match="unknown ACS scopes: teams"):
        await issuer.create_user_and_token(["chat", "teams"], HOUR)
    with pytest.raises(ValueError, match="non-empty"):
        await issuer.create_user_and_token([], HOUR)
    with pytest.raises(ValueError, match="between 60 and 1440"):
        await issuer.create_user_and_token(["chat"], timedelta(minutes=59))
    user_id, _ = await issuer.create_user_and_token(["chat"], timedelta(minutes=1440))
    with pytest.raises(ValueError, match="between 60 and 1440"):
        await issuer.issue_token(user_id, ["chat"], timedelta(minutes=1441))


async def test_rejects_forged_and_foreign_tokens(
    issuer: LocalIdentityIssuer, tmp_path: Path, clock: SteppingClock
) -> None:
    user_id, issued = await issuer.create_user_and_token(["chat"], HOUR)
    header, payload, signature = issued.token.split(".")
    tampered_signature = ("A" if signature[0] != "A" else "B") + signature[1:]

    other_dir = LocalIdentityIssuer(tmp_path / "other", clock=clock)
    try:
        _, foreign = await other_dir.create_user_and_token(["chat"], HOUR)
        unsigned = jwt.encode(
            jwt.decode(issued.token, options={"verify_signature": False}), "k" * 32
        )
        for bad in (f"{header}.{payload}.{tampered_signature}", foreign.token, unsigned, "junk"):
            with pytest.raises(TokenInvalid) as rejected:
                issuer.verify_token(bad)
            assert issued.token not in str(rejected.value)
    finally:
        await other_dir.close()
    assert issuer.verify_token(issued.token)["sub"] == user_id


async def test_state_survives_a_restart(tmp_path: Path, clock: SteppingClock) -> None:
    first = LocalIdentityIssuer(tmp_path, clock=clock)
    kept, kept_token = await first.create_user_and_token(["chat"], HOUR)
    revoked, revoked_token = await first.create_user_and_token(["chat"], HOUR)
    deleted, deleted_token = await first.create_user_and_token(["chat"], HOUR)
    await first.revoke_tokens(revoked)
    await first.delete_user(deleted)
    resource_id = first.resource_id
    await first.close()

    second = LocalIdentityIssuer(tmp_path, clock=clock)
    try:
        assert second.resource_id == resource_id
        assert second.verify_token(kept_token.token)["sub"] == kept
        with pytest.raises(TokenRevoked):
            second.verify_token(revoked_token.token)
        with pytest.raises(TokenIdentityDeleted):
            second.verify_token(deleted_token.token)
        with pytest.raises(IdentityNotFound):
            await second.issue_token(deleted, ["chat"], HOUR)
        fresh = await second.issue_token(revoked, ["chat"], HOUR)
        assert second.verify_token(fresh.token)["sub"] == revoked
    finally:
        await second.close()


async def test_two_instances_share_one_data_dir(tmp_path: Path, clock: SteppingClock) -> None:
    # The devserver and a test process (or two workers) on the same data dir see each other.
    writer = LocalIdentityIssuer(tmp_path, clock=clock)
    reader = LocalIdentityIssuer(tmp_path, clock=clock)
    try:
        user_id, issued = await writer.create_user_and_token(["chat"], HOUR)
        assert reader.verify_token(issued.token)["sub"] == user_id
        await reader.revoke_tokens(user_id)
        with pytest.raises(TokenRevoked):
            writer.verify_token(issued.token)
    finally:
        await writer.close()
        await reader.close()


async def test_explicit_resource_id_is_kept_and_checked(tmp_path: Path) -> None:
    resource_id = "2dee53b4-368b-45b4-ab52-8493fb117652"
    await LocalIdentityIssuer(tmp_path, resource_id).close()
    reopened = LocalIdentityIssuer(tmp_path)
    assert reopened.resource_id == resource_id
    await reopened.close()
    with pytest.raises(ValueError, match="already belongs"):
        LocalIdentityIssuer(tmp_path, "11111111-1111-4111-8111-111111111111")


async def test_many_concurrent_creates(issuer: LocalIdentityIssuer) -> None:
    results = await asyncio.gather(
        *(issuer.create_user_and_token(["chat"], HOUR) for _ in range(200))
    )
    users = {user_id for user_id, _ in results}
    assert len(users) == 200
    tokens = await asyncio.gather(*(issuer.issue_token(u, ["voip"], HOUR) for u in users))
    assert {issuer.verify_token(t.token)["sub"] for t in tokens} == users


async def test_concurrent_callers_on_threads(issuer: LocalIdentityIssuer) -> None:
    # The runtime may call from worker threads (sync code paths, to_thread); the lock holds.
    def create_many() -> list[str]:
        return [asyncio.run(issuer.create_user_and_token(["chat"], HOUR))[0] for _ in range(25)]

    batches = await asyncio.gather(*(asyncio.to_thread(create_many) for _ in range(4)))
    assert len({user for batch in batches for user in batch}) == 100


async def test_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    await LocalIdentityIssuer(data_dir).close()

    key_mode = stat.S_IMODE((data_dir / SIGNING_KEY_FILE_NAME).stat().st_mode)
    assert key_mode == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert (data_dir / DATABASE_FILE_NAME).is_file()
    # No temporary key file left behind.
    assert sorted(p.name for p in data_dir.iterdir() if "key" in p.name) == [SIGNING_KEY_FILE_NAME]


async def test_existing_key_is_reused(tmp_path: Path) -> None:
    await LocalIdentityIssuer(tmp_path).close()
    key_before = (tmp_path / SIGNING_KEY_FILE_NAME).read_bytes()
    await LocalIdentityIssuer(tmp_path).close()
    assert (tmp_path / SIGNING_KEY_FILE_NAME).read_bytes() == key_before


# --- Teams users' token exchange ------------------------------------------------------------


async def test_teams_exchange_issues_a_teams_user_token(tmp_path: Path) -> None:
    issuer = LocalIdentityIssuer(tmp_path)
    issued = await issuer.exchange_teams_token(entra_token(), TEAMS_APP, TEAMS_OID)
    claims = issuer.verify_token(issued.token)
    assert claims["sub"] == f"8:orgid:{TEAMS_OID}"
    assert claims["skypeid"] == f"orgid:{TEAMS_OID}"
    assert sorted(claims["acsScope"].split(",")) == ["chat", "voip"]
    assert claims["resourceLocation"] == RESOURCE_LOCATION
    assert issued.expires_on <= datetime.now(UTC) + timedelta(hours=1, seconds=5)


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("not-a-jwt", "not a JWT"),
        (entra_token(aud="api://other"), "its aud is not"),
        (entra_token(appid="00000000-0000-0000-0000-000000000000"), "another app"),
        (entra_token(oid="00000000-0000-0000-0000-000000000001"), "another user"),
        (entra_token(exp=1), "expired"),
        (entra_token(exp=None), "expired"),
        # Issue 21 A8: tid, iss, scp and nbf were not checked.
        (entra_token(tid=None), "tid"),
        (entra_token(tid="not-a-tenant"), "tid"),
        (entra_token(iss="https://login.example.test/evil/v2.0"), "iss"),
        (entra_token(iss=None), "iss"),
        (entra_token(scp="User.Read"), "scp"),
        (entra_token(scp=None), "scp"),
        (entra_token(nbf=int(time.time()) + 3600), "nbf"),
    ],
)
async def test_teams_exchange_refuses_what_acs_would_and_says_why(
    tmp_path: Path, token: str, problem: str
) -> None:
    issuer = LocalIdentityIssuer(tmp_path)
    with pytest.raises(TeamsTokenRejected, match=problem):
        await issuer.exchange_teams_token(token, TEAMS_APP, TEAMS_OID)
