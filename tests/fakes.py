"""Test doubles for the ports: an in-memory ACS that can be made to fail. Swapped in by
construction, never by patching; any port is counted or made to fail by `tests.proxies.spy`."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import jwt

from switchboard.acs import TEAMS_TOKEN_AUDIENCE
from switchboard.errors import DependencyUnavailable
from switchboard.ports import IdentityNotFound, IssuedToken


class FakeIdentityProvider:
    """ACS Identity in memory: identities, tokens, revocation and deletion, plus injected faults.

    `fail` maps an operation name to the exception its next calls raise. `yield_between` makes
    every call yield to the event loop, so concurrent requests really interleave.
    """

    def __init__(self, *, yield_between: bool = False) -> None:
        self.identities: dict[str, int] = {}  # id -> token generation
        self.deleted: set[str] = set()
        self.fail: dict[str, Exception] = {}
        self.yield_between = yield_between
        self._serial = itertools.count()

    async def _enter(self, operation: str) -> None:
        if self.yield_between:
            await asyncio.sleep(0)
        if operation in self.fail:
            raise self.fail[operation]

    def _token(self, acs_id: str, expires_in: timedelta) -> IssuedToken:
        serial = next(self._serial)
        return IssuedToken(
            token=f"acs-token-{acs_id}-{self.identities[acs_id]}-{serial}",
            expires_on=datetime.now(UTC) + expires_in,
        )

    def token_valid(self, token: str) -> bool:
        """Whether `token` (from this fake) would still be accepted by ACS."""
        _, _, rest = token.partition("acs-token-")
        acs_id, generation, _ = rest.rsplit("-", 2)
        return acs_id in self.identities and self.identities[acs_id] == int(generation)

    async def create_user_and_token(
        self, scopes: Sequence[str], expires_in: timedelta
    ) -> tuple[str, IssuedToken]:
        await self._enter("create_user_and_token")
        acs_id = f"8:acs:fake_{uuid.uuid4()}"
        self.identities[acs_id] = 0
        return acs_id, self._token(acs_id, expires_in)

    async def issue_token(
        self, communication_user_id: str, scopes: Sequence[str], expires_in: timedelta
    ) -> IssuedToken:
        await self._enter("issue_token")
        if communication_user_id not in self.identities:
            raise IdentityNotFound(communication_user_id)
        return self._token(communication_user_id, expires_in)

    async def revoke_tokens(self, communication_user_id: str) -> None:
        await self._enter("revoke_tokens")
        if communication_user_id in self.identities:
            self.identities[communication_user_id] += 1

    async def delete_user(self, communication_user_id: str) -> None:
        await self._enter("delete_user")
        if self.identities.pop(communication_user_id, None) is not None:
            self.deleted.add(communication_user_id)

    async def exchange_teams_token(
        self, aad_token: str, client_id: str, user_object_id: str
    ) -> IssuedToken:
        await self._enter("exchange_teams_token")
        self.identities.setdefault(f"8:orgid:{user_object_id}", 0)
        return self._token(f"8:orgid:{user_object_id}", timedelta(hours=1))

    async def close(self) -> None:
        return None


def store_down() -> DependencyUnavailable:
    """What a store that is down raises: put it in a spied store's `fail`."""
    return DependencyUnavailable("store", retry_after=3)


TEAMS_APP = "2c3e1e83-8fd7-4615-ad2b-b8c1229845ac"
TEAMS_OID = "32c0a5db-05ec-78ea-51ab-3f06b329397e"


def entra_token(**overrides: object) -> str:
    """An Entra-shaped access token of a Teams user for ACS (signed with a throwaway HMAC key:
    the local issuer cannot check Entra signatures, and ACS is not reachable here)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "aud": TEAMS_TOKEN_AUDIENCE,
        "appid": TEAMS_APP,
        "oid": TEAMS_OID,
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
        "scp": "Teams.ManageCalls Teams.ManageChats",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, "x" * 32, "HS256")
