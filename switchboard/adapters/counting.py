"""Port wrappers that count calls: how many store and ACS operations a request really costs.

The benchmark reports these counts per hot path, and tests pin them (a count, unlike a timing,
is deterministic). They wrap any adapter and change nothing about what it does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta

from switchboard.ports import Doc, DocumentStore, IdentityProvider, IssuedToken, Page


class InterceptingStore:
    """A DocumentStore that forwards to `inner`, calling `before(operation, container)` first.

    Subclasses count (below) or, in tests, fail chosen operations; the store itself is untouched.
    """

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner

    def before(self, operation: str, container: str) -> None:
        """Called before each operation; `container` is "" for ping."""

    async def read(self, container: str, pk: str, id: str) -> Doc | None:
        self.before("read", container)
        return await self.inner.read(container, pk, id)

    async def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> list[Doc]:
        self.before("read_many", container)
        return await self.inner.read_many(container, keys)

    async def create(self, container: str, doc: Doc) -> Doc:
        self.before("create", container)
        return await self.inner.create(container, doc)

    async def replace(self, container: str, doc: Doc, etag: str) -> Doc:
        self.before("replace", container)
        return await self.inner.replace(container, doc, etag)

    async def upsert(self, container: str, doc: Doc) -> Doc:
        self.before("upsert", container)
        return await self.inner.upsert(container, doc)

    async def delete(self, container: str, pk: str, id: str, etag: str | None = None) -> bool:
        self.before("delete", container)
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
        self.before("query", container)
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
        self.before("ping", "")
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


class CountingStore(InterceptingStore):
    """A DocumentStore that counts each operation by name ("read", "create", ...)."""

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)
        self.calls: Counter[str] = Counter()

    def before(self, operation: str, container: str) -> None:
        if operation != "ping":  # health checks are not part of a request's cost
            self.calls[operation] += 1


class CountingIdentityProvider:
    """An IdentityProvider that counts each ACS call by name."""

    def __init__(self, inner: IdentityProvider) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def create_user_and_token(
        self, scopes: Sequence[str], expires_in: timedelta
    ) -> tuple[str, IssuedToken]:
        self.calls["create_user_and_token"] += 1
        return await self.inner.create_user_and_token(scopes, expires_in)

    async def issue_token(
        self, communication_user_id: str, scopes: Sequence[str], expires_in: timedelta
    ) -> IssuedToken:
        self.calls["issue_token"] += 1
        return await self.inner.issue_token(communication_user_id, scopes, expires_in)

    async def revoke_tokens(self, communication_user_id: str) -> None:
        self.calls["revoke_tokens"] += 1
        await self.inner.revoke_tokens(communication_user_id)

    async def delete_user(self, communication_user_id: str) -> None:
        self.calls["delete_user"] += 1
        await self.inner.delete_user(communication_user_id)

    async def exchange_teams_token(
        self, aad_token: str, client_id: str, user_object_id: str
    ) -> IssuedToken:
        self.calls["exchange_teams_token"] += 1
        return await self.inner.exchange_teams_token(aad_token, client_id, user_object_id)

    async def close(self) -> None:
        await self.inner.close()
