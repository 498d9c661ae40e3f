"""The reaction layer's own invariant: no work is parked (a parked item is a copy that never
converged: its reconciler failed `MAX_ATTEMPTS` times) and, after a drain, none is left due."""

from __future__ import annotations

import time

from switchboard.ports import ChatProvider, DocumentStore
from switchboard.services.reactions import WORK
from tests.integrity import documents


async def check(store: DocumentStore, chat_provider: ChatProvider | None) -> list[str]:
    found = []
    now = time.time()
    for item in await documents(store, WORK):
        if item.get("parked"):
            found.append(
                f"{item['kind']} {item['key']!r} parked after {item['attempts']} attempts "
                f"({item.get('lastError')})"
            )
        elif item.get("due", 0) <= now:
            found.append(f"{item['kind']} {item['key']!r} is due and was not run")
    return found
