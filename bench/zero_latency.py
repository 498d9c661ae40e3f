"""Zero-latency stand-ins for the ports, to measure what the handler itself costs.

They answer from dicts with no I/O and no signing, and support only the operations the token
path uses; they are a measuring instrument, not adapters (anything else raises).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from switchboard.ports import Doc, DocumentExists, DocumentNotFound, IssuedToken, PreconditionFailed


class InstantStore:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str, str], Doc] = {}
        self._etags = itertools.count()

    def _stamp(self, doc: Doc) -> Doc:
        stored = {**doc, "_etag": str(next(self._etags)), "_ts": 0}
        self.docs[(doc["pk"], doc["id"], doc.get("_c", ""))] = stored
        return dict(stored)

    async def read(self, container: str, pk: str, id: str) -> Doc | None:
        doc = self.docs.get((pk, id, container))
        return dict(doc) if doc else None

    async def create(self, container: str, doc: Doc) -> Doc:
        if (doc["pk"], doc["id"], container) in self.docs:
            raise DocumentExists(doc["id"])
        return self._stamp({**doc, "_c": container})

    async def replace(self, container: str, doc: Doc, etag: str) -> Doc:
        current = self.docs.get((doc["pk"], doc["id"], container))
        if current is None:
            raise DocumentNotFound(doc["id"])
        if current["_etag"] != etag:
            raise PreconditionFailed(doc["id"])
        return self._stamp({**doc, "_c": container})

    async def delete(self, container: str, pk: str, id: str, etag: str | None = None) -> bool:
        return self.docs.pop((pk, id, container), None) is not None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"InstantStore has no {name}: the token path does not use it")


class InstantIdentityProvider:
    TOKEN = "x" * 900  # about the size of a real ACS token

    async def create_user_and_token(
        self, scopes: Sequence[str], expires_in: timedelta
    ) -> tuple[str, IssuedToken]:
        acs_id = f"8:acs:bench_{uuid.uuid4()}"
        return acs_id, await self.issue_token(acs_id, scopes, expires_in)

    async def issue_token(
        self, communication_user_id: str, scopes: Sequence[str], expires_in: timedelta
    ) -> IssuedToken:
        return IssuedToken(self.TOKEN, datetime.now(UTC) + expires_in)

    async def revoke_tokens(self, communication_user_id: str) -> None:
        return None

    async def delete_user(self, communication_user_id: str) -> None:
        return None

    async def exchange_teams_token(
        self, aad_token: str, client_id: str, user_object_id: str
    ) -> IssuedToken:
        return IssuedToken(self.TOKEN, datetime.now(UTC) + timedelta(hours=1))

    async def close(self) -> None:
        return None
