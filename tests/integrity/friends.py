"""Integrity of friends and direct chat threads (docs/reactions.md "Friends, chat and meetings").

- every side document says what its pair document says, and every status the pair document
  gives has its side document;
- nothing names a user without a profile (or of another generation than recorded), but a block
  of an id that had not signed in when it was blocked;
- a direct thread exists — ledger, ACS thread (local provider), both listings — iff the pair are
  friends; no live thread of the chat provider is unknown to every record (a chat nobody can
  remove).
"""

from __future__ import annotations

from typing import Any

from switchboard.services.friends import PAIR_DOC_ID, Pair
from tests.integrity._scan import all_docs, live_local_threads


async def check(store: Any, chat_provider: Any) -> list[str]:
    problems: list[str] = []
    docs = await all_docs(store, "friends")
    profiles = {d["id"]: d for d in await all_docs(store, "users") if d["pk"] == d["id"]}
    pairs: dict[tuple[str, str], Pair] = {}
    for doc in docs:
        if doc["id"] == PAIR_DOC_ID:
            pair = Pair.of(doc)
            pairs[pair.users] = pair
    sides = {(d["pk"], d["userId"]): d for d in docs if d["id"].startswith("friend:")}

    for (owner, other), side in sides.items():
        a, b = sorted((owner, other))
        found = pairs.get((a, b))
        if found is None:
            problems.append(f"friends: {owner}'s side about {other} ({side['status']}) has no pair")
        elif found.status(owner) != side["status"]:
            problems.append(
                f"friends: {owner}'s side about {other} says {side['status']}, "
                f"the pair {found.status(owner)}"
            )
        # A block of an id that never signed in names no profile, and may: its sides are the
        # blocker's "blocked" and the blocked id's hidden "blockedBy".
        never = found is not None and not found.generations.get(
            other if side["status"] == "blocked" else owner
        )
        if owner not in profiles and not (side["status"] == "blockedBy" and never):
            problems.append(f"friends: a side document of {owner}, who has no profile")
        if other not in profiles and not (side["status"] == "blocked" and never):
            problems.append(f"friends: {owner}'s side names {other}, who has no profile")

    for (a, b), pair in pairs.items():
        if pair.empty:
            problems.append(f"friends: an empty pair document {a}/{b}")
        for user in (a, b):
            other = pair.other(user)
            status = pair.status(user)
            if status is not None and (user, other) not in sides:
                problems.append(f"friends: {user} should see {other} as {status}: no side")
            profile = profiles.get(user)
            recorded = pair.generations.get(user)
            stale = profile is None or (
                bool(recorded) and recorded != profile.get("generation", "")
            )
            kept = pair.word(other) == "yes" or (pair.word(other) == "block" and bool(recorded))
            if stale and (pair.word(user) is not None or kept):
                problems.append(f"friends: the pair {a}/{b} names {user}, erased or re-registered")

    problems += await _direct_threads(store, chat_provider, pairs, profiles)
    return problems


async def _direct_threads(
    store: Any, chat_provider: Any, pairs: dict[tuple[str, str], Pair], profiles: dict[str, Any]
) -> list[str]:
    problems: list[str] = []
    system = await all_docs(store, "system")
    ledgers = {tuple(d["users"]): d for d in system if d["id"].startswith("direct:")}
    known_threads = {d.get("threadId") for d in system} - {None}
    live = live_local_threads(chat_provider)

    def friends(a: str, b: str) -> bool:
        pair = pairs.get((a, b))
        return pair is not None and pair.friends and a in profiles and b in profiles

    for (a, b), ledger in ledgers.items():
        if not friends(a, b):
            problems.append(f"chat: a direct thread ledger of {a}/{b}, who are not friends")
        elif ledger["threadId"] is None:
            problems.append(f"chat: the direct thread of {a}/{b} was never made")
        elif live is not None and ledger["threadId"] not in live:
            problems.append(f"chat: the direct thread of {a}/{b} is gone from the chat provider")
    for listing in await all_docs(store, "threads"):
        if listing["kind"] != "direct":
            continue
        owner, other = listing["pk"], listing["userId"]
        a, b = sorted((owner, other))
        known = ledgers.get((a, b))
        if known is None or known["threadId"] != listing["threadId"] or not friends(a, b):
            problems.append(f"chat: {owner} lists a direct thread with {other} that should not be")
    for (a, b), ledger in ledgers.items():
        if friends(a, b) and ledger["threadId"]:
            for owner, other in ((a, b), (b, a)):
                mine = [
                    t
                    for t in await all_docs(store, "threads")
                    if t["pk"] == owner and t["id"] == f"direct:{other}"
                ]
                if not mine:
                    problems.append(f"chat: {owner} does not list the thread with {other}")
    if live is not None:
        for thread_id, people in live.items():
            if thread_id not in known_threads and people:
                problems.append(f"chat: a live thread no record knows ({len(people)} people)")
    return problems
