"""Erase is final (issue 19 §5), on both stores: a victim erases themself while other users add,
accept, invite, befriend and open chats with them, all at once. Once the work is drained, the
integrity check finds nothing that names a victim (no profile, no ACS identity, no friendship,
membership, invitation, agenda entry, thread or chat seat) and every other invariant holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from switchboard.adapters.chat_local import LocalChatProvider
from switchboard.ports import DocumentStore, IdentityNotFound
from switchboard.runtime import set_runtime
from tests.conftest import Client, make_runtime
from tests.integrity import check_all
from tests.integrity.erasure import check_erased

VICTIMS = 6
START, END = "2026-11-23T10:00:00+00:00", "2026-11-23T11:00:00+00:00"


@pytest.fixture
async def client(store: DocumentStore, tmp_path: Path) -> AsyncIterator[Client]:
    rt = make_runtime(tmp_path, store=store)
    set_runtime(rt)
    yield Client(rt)
    set_runtime(None)
    await rt.chat_provider.close()


async def _call(client: Client, method: str, path: str, user: str, body: Any = None) -> int:
    resp = await client.request(method, path, headers=client.login(user), json_body=body)
    assert resp.status < 500 or resp.status == 503, (method, path, resp.status, resp.body)
    return resp.status


async def _json(client: Client, method: str, path: str, user: str, body: Any = None) -> Any:
    resp = await client.request(method, path, headers=client.login(user), json_body=body)
    assert resp.status < 300, (method, path, resp.status, resp.body)
    return resp.json()


async def test_erase_races_other_users_adding_the_victim(client: Client) -> None:
    victims = [f"victim-{n}" for n in range(VICTIMS)]
    acs_ids = []
    clubs = {}
    for n, victim in enumerate(victims):
        other = f"other-{n}"
        await _json(client, "GET", "/api/me", other)
        acs_ids.append(
            (await _json(client, "POST", "/api/token", victim))["user"]["communicationUserId"]
        )
        await _json(client, "PUT", f"/api/friends/{other}", victim)  # a request to accept
        club = await _json(
            client, "POST", "/api/clubs", other, {"name": "Chess", "visibility": "open"}
        )
        clubs[victim] = club["clubId"]
        await _json(client, "POST", f"/api/clubs/{club['clubId']}/join", victim)
        invite_club = await _json(
            client, "POST", "/api/clubs", other, {"name": "Go", "visibility": "invite"}
        )
        clubs[victim + "/invite"] = invite_club["clubId"]
    await client.runtime.reactor.drain()

    async def race(n: int, victim: str) -> None:
        other = f"other-{n}"
        await asyncio.gather(
            _call(client, "DELETE", "/api/me", victim),
            _call(client, "PUT", f"/api/friends/{victim}", other),  # accept
            _call(client, "PUT", f"/api/clubs/{clubs[victim + '/invite']}/members/{victim}", other),
            _call(
                client,
                "POST",
                "/api/meetings",
                other,
                {"subject": "Sync", "start": START, "end": END, "invitees": [victim]},
            ),
            _call(client, "PUT", f"/api/friends/{victim}/thread", other),
            _call(client, "GET", f"/api/clubs/{clubs[victim]}/members", other),
        )

    await asyncio.gather(*(race(n, v) for n, v in enumerate(victims)))
    store = client.runtime.adapters.store
    chat = client.runtime.chat_provider
    # The requests answered; the purge has not run yet: the check sees what is left to do.
    assert await check_erased(store, chat, victims, also=acs_ids) != []
    await client.runtime.reactor.drain()

    for victim in victims:
        assert await store.read("users", victim, victim) is None, victim
    assert isinstance(chat, LocalChatProvider)
    assert await check_all(store, chat, erased=victims) == []
    assert await check_erased(store, chat, victims, also=acs_ids) == []
    for acs_id in acs_ids:  # their ACS identities are gone: no token can be issued
        with pytest.raises(IdentityNotFound):
            await client.runtime.adapters.identity_provider.issue_token(
                acs_id, ["chat"], timedelta(hours=1)
            )
