"""The text rule on every route that takes text other users see: a display name, a club name or a
meeting subject with a direction-changing or invisible character is a 400 `invalid_text` naming
the field, and changes nothing; a token's name claim with such characters is cleaned, never
shown as it came; a second and a third user see only what the rule let through."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client
from tests.proxies import spy_of

RLO, ZWSP, ZWJ = "\u202e", "\u200b", "\u200d"
START, END = "2026-11-23T15:00:00+01:00", "2026-11-23T16:00:00+01:00"
SHORT = "https://teams.microsoft.com/meet/2345678901234?p=AbC123xY"


def routes(bad: str) -> list[tuple[str, str, dict[str, Any], str]]:
    meeting = {"subject": f"Review {bad}", "start": START, "end": END, "invitees": ["bob"]}
    return [
        ("PATCH", "/api/me", {"displayName": f"Alice{bad}"}, "displayName"),
        ("POST", "/api/dev/login", {"userId": "dave", "displayName": f"Dave{bad}"}, "displayName"),
        ("POST", "/api/clubs", {"name": f"Chess {bad}club", "visibility": "open"}, "name"),
        ("POST", "/api/meetings", meeting, "subject"),
        ("POST", "/api/meetings/import", {**meeting, "joinUrl": SHORT}, "subject"),
    ]


@pytest.mark.parametrize("bad", [RLO + "txt.exe", ZWSP, "al" + ZWJ + "ice", "\u2066x\u2069"])
async def test_names_and_subjects_with_hidden_characters_are_refused(
    counting_client: Client, bad: str
) -> None:
    client = counting_client
    alice, bob, carol = (client.login(u, u.title()) for u in ("alice", "bob", "carol"))
    for who in (alice, bob, carol):
        assert (await client.request("GET", "/api/me", headers=who)).status == 200
    store = spy_of(client.runtime.adapters.store)
    for method, path, body, field in routes(bad):
        store.calls.clear()
        resp = await client.request(method, path, headers=alice, json_body=body)
        assert resp.status == 400, (path, resp.body)
        problem = resp.json()
        assert (problem["code"], problem["field"]) == ("invalid_text", field), path
        assert bad not in problem["detail"]
        assert not {"create", "replace", "upsert", "delete"} & set(store.calls), path
    # Nothing reached the others: Alice is still "Alice", and nobody has a club or a meeting.
    for who in (alice, bob, carol):
        assert (await client.request("GET", "/api/clubs", headers=who)).json()["items"] == []
        day = await client.request(
            "GET", "/api/meetings", headers=who, params={"date": "2026-11-23"}
        )
        assert day.json()["items"] == []
    assert (await client.request("GET", "/api/me", headers=alice)).json()["displayName"] == "Alice"


async def test_the_same_text_without_hidden_characters_goes_through(client: Client) -> None:
    alice, bob = client.login("alice", "Alice"), client.login("bob", "Bob")
    for who in (alice, bob):
        await client.request("GET", "/api/me", headers=who)
    emoji = "👩" + ZWJ + "💻"
    for method, path, body, _ in routes(f" {emoji}"):
        resp = await client.request(method, path, headers=alice, json_body=body)
        assert resp.status in (200, 201), (path, resp.body)
    assert (await client.request("GET", "/api/me", headers=alice)).json()["displayName"] == (
        f"Alice {emoji}"
    )


async def test_a_name_claim_with_hidden_characters_is_cleaned(client: Client) -> None:
    """The token's name claim is the issuer's, not typed here: a sign-in never fails on it, and
    what the rule refuses never reaches another user (a friend list, a push title)."""
    mallory = client.login("mallory", f"Mal{RLO}lory\u2028{ZWSP}")
    bob, carol = client.login("bob", "Bob"), client.login("carol", "Carol")
    me = await client.request("GET", "/api/me", headers=mallory)
    assert me.status == 200
    assert me.json()["displayName"] == "Mal lory"
    await client.request("GET", "/api/me", headers=bob)
    assert (await client.request("PUT", "/api/friends/bob", headers=mallory)).status == 200
    incoming = await client.request(
        "GET", "/api/friends", headers=bob, params={"status": "incoming"}
    )
    assert [f["displayName"] for f in incoming.json()["items"]] == ["Mal lory"]
    assert (await client.request("GET", "/api/friends", headers=carol)).json()["items"] == []
