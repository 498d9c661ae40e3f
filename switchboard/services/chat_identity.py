"""The controller's own ACS user for chat: one service identity, created once, kept in the store.

ACS Chat acts as a user: whoever creates a thread or changes its participants does so with a
user access token. The controller uses one identity of its own for every thread, created through
the identity port the first time it is needed and kept in `system/chat-service-identity`, so
every instance and every restart acts as the same user (and so stays a participant of the
threads it created). Concurrent first uses each create an identity; one wins the store write and
the others delete theirs. Tokens are minted through the identity port with the `chat` scope; the
Azure chat adapter caches one and asks for the next shortly before it expires (never one per
request).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TypedDict, cast

from switchboard import errors
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentStore,
    IdentityNotFound,
    IdentityProvider,
    IssuedToken,
    PreconditionFailed,
)

log = logging.getLogger("switchboard.chat")

SYSTEM = "system"
SERVICE_IDENTITY_KEY = "chat-service-identity"
SCOPES = ("chat",)
# The longest lifetime ACS allows: fewer refreshes; the adapter refreshes before expiry anyway.
TOKEN_LIFETIME = timedelta(hours=24)
_ATTEMPTS = 3


class ServiceIdentityDoc(TypedDict):
    """`system/chat-service-identity`: the controller's ACS identity for chat."""

    id: str
    pk: str
    communicationUserId: str
    createdAt: str


class ChatServiceIdentity:
    """Mints `chat` tokens for the controller's service identity, creating it on first use."""

    def __init__(self, store: DocumentStore, identities: IdentityProvider) -> None:
        self._store = store
        self._identities = identities

    async def communication_user_id(self) -> str | None:
        """The service identity, if it was created already (no ACS call)."""
        doc = await self._store.read(SYSTEM, SERVICE_IDENTITY_KEY, SERVICE_IDENTITY_KEY)
        return None if doc is None else str(doc["communicationUserId"])

    async def token(self) -> tuple[str, IssuedToken]:
        """(communicationUserId, a fresh `chat` token): 1 read + 1 ACS call once it exists."""
        for _ in range(_ATTEMPTS):
            doc = await self._store.read(SYSTEM, SERVICE_IDENTITY_KEY, SERVICE_IDENTITY_KEY)
            if doc is not None:
                acs_id = str(doc["communicationUserId"])
                try:
                    return acs_id, await self._identities.issue_token(
                        acs_id, SCOPES, TOKEN_LIFETIME
                    )
                except IdentityNotFound:
                    # Deleted behind our back (a resource reset): map a new one in its place.
                    log.warning("the chat service identity is gone from ACS; creating a new one")
            try:
                return await self._create(doc)
            except (DocumentExists, PreconditionFailed):
                continue  # another instance created it first: use theirs
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _create(self, previous: Doc | None) -> tuple[str, IssuedToken]:
        acs_id, issued = await self._identities.create_user_and_token(SCOPES, TOKEN_LIFETIME)
        doc: ServiceIdentityDoc = {
            "id": SERVICE_IDENTITY_KEY,
            "pk": SERVICE_IDENTITY_KEY,
            "communicationUserId": acs_id,
            "createdAt": datetime.now(UTC).isoformat(),
        }
        try:
            if previous is None:
                await self._store.create(SYSTEM, cast(Doc, doc))
            else:
                await self._store.replace(SYSTEM, cast(Doc, doc), previous["_etag"])
        except BaseException:
            try:
                await self._identities.delete_user(acs_id)
            except Exception:
                log.warning("could not delete an unused chat service identity", exc_info=True)
            raise
        log.info("created the chat service identity")
        return acs_id, issued
