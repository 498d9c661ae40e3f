"""Read, change, write under the etag, retry on a race: the one read-modify-write of the house.

Every conditional update of a document goes through `modify`, so the rules of a race are written
once: a document created meanwhile (DocumentExists), changed meanwhile (PreconditionFailed) or
deleted meanwhile (DocumentNotFound) is read again and the change applied to what is there now.
The change is a pure function of the current document: it may run several times.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

from switchboard import errors
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    PreconditionFailed,
)


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""What a change returns to leave the document as it is (no write)."""

Change = Callable[[Doc | None], Doc | _Keep | None]

ATTEMPTS = 5


async def modify(
    store: DocumentStore,
    container: str,
    pk: str,
    id: str,
    change: Change,
    *,
    attempts: int = ATTEMPTS,
) -> Doc | None:
    """Apply `change` to the document `(pk, id)` and write the result conditionally.

    `change(current)` gets the document as stored (None when missing; its `_etag` and `_ts`
    included) and returns the document to store, None to delete it, or `KEEP`. Returns the
    document as stored after the write (None when deleted or absent; the current one for KEEP).
    After `attempts` lost races: `errors.DependencyUnavailable("store", retry_after=1)`.
    """
    for _ in range(attempts):
        current = await store.read(container, pk, id)
        wanted = change(current)
        if wanted is KEEP:
            return current
        try:
            if wanted is None:
                if current is not None:
                    await store.delete(container, pk, id, current["_etag"])
                return None
            if current is None:
                return await store.create(container, wanted)
            return await store.replace(container, wanted, current["_etag"])
        except (DocumentExists, PreconditionFailed, DocumentNotFound):
            continue
    raise errors.DependencyUnavailable("store", retry_after=1)
