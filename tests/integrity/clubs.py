"""The clubs' integrity check: read every document the clubs keep (and their copies) and list
what breaks an invariant of the reaction layer (issue 19). Tests run it after draining the work.

Invariants: each club's `memberCount` is the number of its member records, its owner is one of
them; every user's membership copies are exactly their member records (and invitation copies
exactly their pending invitations); no member, invitation (invitee or inviter) or call
`startedBy` names a user without a profile (or a later user of the same id: another profile
generation); a deleted club leaves nothing; each club's ACS thread holds exactly its seated
members — the first 249 in join order with an ACS identity — as the chat provider itself lists
them, and exactly those have the thread listed.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from switchboard.ports import ChatProvider, ChatThreadNotFound, Doc, DocumentStore
from switchboard.services.chat import CLUB_SEATS


async def documents(store: DocumentStore, container: str) -> list[Doc]:
    """Every document of a container, across partitions (a test helper: the app never does
    this). SQLite: read from the file; Cosmos: one cross-partition query."""
    inner: Any = getattr(store, "inner", store)
    path = getattr(inner, "_path", None)
    if path is not None:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT body FROM documents WHERE container = ?", (container,))
            return [json.loads(row[0]) for row in rows]
    proxy = inner._container(container)
    return [
        {k: v for k, v in doc.items() if not k.startswith("_")}
        async for doc in proxy.query_items("SELECT * FROM c")
    ]


async def check(store: DocumentStore, chat_provider: ChatProvider | None) -> list[str]:
    """Every violation found, as a line naming the club (and user) concerned; [] when sound."""
    found: list[str] = []
    now = datetime.now(UTC)
    profiles = {d["id"]: d for d in await documents(store, "users")}
    records: dict[str, list[Doc]] = defaultdict(list)
    for doc in await documents(store, "clubs"):
        records[doc["pk"]].append(doc)
    copies = await documents(store, "memberships")
    threads = await documents(store, "threads")
    system = {d["id"]: d for d in await documents(store, "system")}

    def person(user_id: str | None, generation: str | None) -> bool:
        profile = profiles.get(user_id or "")
        return profile is not None and (
            generation is None or profile.get("generation", "") == generation
        )

    want_memberships: set[tuple[str, str]] = set()
    want_invitations: set[tuple[str, str]] = set()
    live_clubs: set[str] = set()
    for club_id, docs in records.items():
        club = next((d for d in docs if d["id"] == "club"), None)
        members = sorted(
            (d for d in docs if d.get("type") == "member"), key=lambda d: str(d["joinedAt"])
        )
        invites = [d for d in docs if d.get("type") == "invite"]
        call = next((d for d in docs if d["id"] == "call"), None)
        if club is None or club.get("deleted"):
            found.append(f"club {club_id}: {len(docs)} records left of a deleted club")
            continue
        live_clubs.add(club_id)
        if club["memberCount"] != len(members):
            found.append(
                f"club {club_id}: memberCount {club['memberCount']} for {len(members)} members"
            )
        if club["ownerId"] not in {m["userId"] for m in members}:
            found.append(f"club {club_id}: owner {club['ownerId']} is not a member")
        for m in members:
            want_memberships.add((m["userId"], club_id))
            if not person(m["userId"], m.get("generation")):
                found.append(f"club {club_id}: member {m['userId']} has no profile")
        for i in invites:
            want_invitations.add((i["userId"], club_id))
            if not person(i["userId"], i.get("generation")):
                found.append(f"club {club_id}: invitation of {i['userId']} has no profile")
            if i.get("invitedBy") and i["invitedBy"] not in profiles:
                found.append(f"club {club_id}: invitation by {i['invitedBy']} has no profile")
            if datetime.fromisoformat(i["expiresAt"]) <= now:
                found.append(f"club {club_id}: invitation of {i['userId']} expired, still there")
            if any(m["userId"] == i["userId"] for m in members):
                found.append(f"club {club_id}: {i['userId']} both member and invited")
        if call is not None and call.get("startedBy") and call["startedBy"] not in profiles:
            found.append(f"club {club_id}: call startedBy {call['startedBy']} has no profile")
        if chat_provider is not None:
            found += await _chat(club_id, members, profiles, system, threads, chat_provider)

    have_memberships = {(d["pk"], d["clubId"]) for d in copies if d.get("type") is None}
    have_invitations = {(d["pk"], d["clubId"]) for d in copies if d.get("type") == "invitation"}
    for user, club_id in sorted(have_memberships ^ want_memberships):
        side = "copy without member record" if (user, club_id) in have_memberships else "no copy"
        found.append(f"membership {user} in {club_id}: {side}")
    for user, club_id in sorted(have_invitations ^ want_invitations):
        side = "copy without invitation" if (user, club_id) in have_invitations else "no copy"
        found.append(f"invitation {user} to {club_id}: {side}")
    for doc in threads:
        if doc.get("kind") == "club" and doc.get("clubId") not in live_clubs:
            found.append(f"thread listing of {doc['pk']} for gone club {doc.get('clubId')}")
    for key, doc in system.items():
        if key.startswith("club:") and doc.get("clubId") not in live_clubs:
            found.append(f"chat record of gone club {doc.get('clubId')}")
    return found


async def _chat(
    club_id: str,
    members: list[Doc],
    profiles: dict[str, Doc],
    system: dict[str, Doc],
    threads: list[Doc],
    chat_provider: ChatProvider,
) -> list[str]:
    seated = {
        m["userId"]: profiles[m["userId"]]["communicationUserId"]
        for m in members
        if profiles.get(m["userId"], {}).get("communicationUserId")
    }
    seated = dict(list(seated.items())[:CLUB_SEATS])
    record = system.get(f"club:{club_id}")
    thread_id = record.get("threadId") if record else None
    listed = {d["pk"] for d in threads if d["id"] == f"club:{club_id}"}
    found: list[str] = []
    if not seated:
        present: set[str] = set()
    elif thread_id is None:
        return [f"club {club_id}: {len(seated)} members to seat and no thread"]
    else:
        try:
            present = set(await chat_provider.list_participants(thread_id))
        except ChatThreadNotFound:
            return [f"club {club_id}: its thread is gone from the chat service"]
    if present != set(seated.values()):
        found.append(
            f"club {club_id}: {len(present)} chat seats for {len(seated)} seated members "
            f"({len(present - set(seated.values()))} extra)"
        )
    if listed != set(seated):
        found.append(f"club {club_id}: thread listed for {len(listed)}, seated {len(seated)}")
    return found
