"""Test doubles for the ports: an in-memory ACS that can be made to fail, and a store wrapper
that fails chosen operations. Both are swapped in by construction, never by patching."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from switchboard.errors import DependencyUnavailable
from switchboard.ports import Doc, DocumentStore, IdentityNotFound, IssuedToken, Page


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

    async def close(self) -> None:
        return None


class FaultyStore:
    """Wraps a real store; operations named in `fail` raise DependencyUnavailable instead."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner
        self.fail: set[str] = set()

    def _check(self, operation: str, container: str = "") -> None:
        if operation in self.fail or f"{operation}:{container}" in self.fail:
            raise DependencyUnavailable("store", retry_after=3)

    async def read(self, container: str, pk: str, id: str) -> Doc | None:
        self._check("read", container)
        return await self.inner.read(container, pk, id)

    async def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> list[Doc]:
        self._check("read_many", container)
        return await self.inner.read_many(container, keys)

    async def create(self, container: str, doc: Doc) -> Doc:
        self._check("create", container)
        return await self.inner.create(container, doc)

    async def replace(self, container: str, doc: Doc, etag: str) -> Doc:
        self._check("replace", container)
        return await self.inner.replace(container, doc, etag)

    async def upsert(self, container: str, doc: Doc) -> Doc:
        self._check("upsert", container)
        return await self.inner.upsert(container, doc)

    async def delete(self, container: str, pk: str, id: str, etag: str | None = None) -> bool:
        self._check("delete", container)
        return await self.inner.delete(container, pk, id, etag)

    async def query(
        self,
        container: str,
        pk: str,
        *,
        where: Mapping[str, str | int | float | bool | None] | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        self._check("query", container)
        return await self.inner.query(
            container,
            pk,
            where=where,
            order_by=order_by,
            descending=descending,
            limit=limit,
            continuation=continuation,
        )

    async def ping(self) -> None:
        self._check("ping")
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
