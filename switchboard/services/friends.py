"""Friends: who can I call — requests, acceptance, blocks, call-info and one-time invite codes.

The truth (docs/reactions.md "Friends, chat and meetings"): one **pair document** per pair of
users, `friends/pair:<digest of the two ids>/pair`, holds each user's own word about the other —
`yes` (I ask, or I accept), `block`, or nothing — and the profile generation of each user it was
recorded for. Every change of a relation (request, accept, cancel, decline, unfriend, block,
unblock, redeem) is one conditional write of that document (`modify`), so two racing changes of
one pair are ordered by the store and a block always wins over an accept, whatever the timing.
Friends means: both words are `yes`. A block clears the other's `yes`.

The copies, kept by the `pair` reconciler (`reconcile_pair`), idempotent and level-triggered:
- each user's **side document** `friends/{ownerId}/friend:<userId>` with the status the owner
  sees (outgoing, incoming, accepted, blocked), so a page of a list is one query in the owner's
  partition;
- the pair's **direct chat thread** (chat's record, both users' listings and the ACS thread),
  which exists iff the pair are friends and one of them asked for it (`PUT …/thread`);
- any word of a user whose profile is gone or is of another generation (erased, perhaps signed
  up again) is dropped, and with it the other's `yes` or block of them (erase is final; only a
  block of an id that had never signed in when it was blocked stays, and holds once it does).

A request writes the pair, then both side documents at once (the caller sees their own change
in the answer and in their next list), inside `work.following(("pair", key))`: the reconciler
runs after it and repairs whatever a crash, a failure or a race left behind.

Names and ACS identities are not copied: a list page reads them with one `Profiles.get_many`,
so a rename costs friends nothing (it was 2 operations per friend inside `PATCH /api/me`), a
friend's new ACS identity shows at once, and an erased friend drops out of every list at once.
Lists are newest first (`since`), no longer by name: a name ordering needs a name copy.

Invite codes live in `invites/{code}`; a per-owner index document (`invites/owner:<userId>`)
lists an owner's codes so the live-code limit and erase need no cross-partition query.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, NotRequired, TypedDict, cast

from switchboard import errors
from switchboard.ports import (
    Doc,
    DocumentNotFound,
    DocumentStore,
    Page,
    PreconditionFailed,
)
from switchboard.services.caller import Caller
from switchboard.services.documents import KEEP, _Keep, modify
from switchboard.services.hooks import ProfileInfo, Profiles
from switchboard.services.reactions import Work

log = logging.getLogger("switchboard.friends")

FRIENDS = "friends"
INVITES = "invites"
PAIR = "pair"  # the work kind: key = the two user ids, sorted, joined by "\n"
PAIR_DOC_ID = "pair"
MAX_RELATIONS = 5000
MAX_LIVE_INVITES = 20
INVITE_LIFETIME = timedelta(hours=24)
INVITE_BYTES = 16  # 128 bits of randomness; token_urlsafe gives 22 URL-safe characters
_COUNT_PAGE = 1000  # the store's largest page: walking every relation (erase) reads this many
_FAN_OUT = 50  # work items recorded at once while a purge fans out
_CODE_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")

# "blockedBy": the blocked user's side of a block: never listed (lists query the other
# statuses) nor told apart from no relation by any answer; it is there so that the blocked
# user's erase finds the pair (their purge pages their own partition) and removes the block.
Status = Literal["outgoing", "incoming", "accepted", "blocked", "blockedBy"]
_NO_RELATION: tuple[Status | None, ...] = (None, "blocked", "blockedBy")
ListedStatus = Literal["outgoing", "incoming", "accepted"]
Word = Literal["yes", "block"]
# (communicationUserId, verified phone number) of a user, or None without a profile: identity's
# API for call-info (the phone number is not part of `ProfileInfo`).
ContactLookup = Callable[[str], Awaitable[tuple[str | None, str | None] | None]]
# Chat's direct-thread reconciler for a pair (a, b): the thread follows the pair.
DirectThreads = Callable[[str, str], Awaitable[object]]


class PairDoc(TypedDict):
    """`friends/pair:<digest>/pair`: the truth about one pair of users."""

    id: str
    pk: str
    users: list[str]  # the two ids, sorted
    words: dict[str, Word | None]  # each user's own word about the other
    # The profile generation each user had when their part was recorded; None: not known (a
    # block of someone who never signed in, or a pair from before generations).
    generations: dict[str, str | None]
    since: str  # when the relation took its present state
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class FriendDoc(TypedDict):
    """`friends/{ownerId}` doc `friend:<userId>`: the owner's view of one relation (a copy)."""

    id: str
    pk: str
    ownerId: str
    userId: str
    status: Status
    since: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class InviteDoc(TypedDict):
    """`invites/{code}`: a one-time friend invite code."""

    id: str
    pk: str
    ownerId: str
    createdAt: str
    expiresAt: str
    used: bool
    usedBy: str | None  # `_redeemer(code, userId)`: a digest, so an erased redeemer leaves no id
    # The redeemer's friendship was recorded: a spent code that is not yet `befriended` lets
    # its redeemer finish (a 503 between the two writes), and nothing else.
    befriended: NotRequired[bool]
    ttl: int  # seconds: Cosmos DB deletes it after expiry; expiry is enforced by `expiresAt`
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class InviteIndexDoc(TypedDict):
    """`invites/owner:<userId>` doc `index`: the codes one user created, with their expiry."""

    id: str
    pk: str
    ownerId: str
    codes: dict[str, str]  # code -> expiresAt
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@dataclass(frozen=True, slots=True)
class FriendView:
    user_id: str
    display_name: str
    communication_user_id: str | None
    status: ListedStatus
    since: str


@dataclass(frozen=True, slots=True)
class FriendPage:
    items: list[FriendView]
    continuation: str | None


@dataclass(frozen=True, slots=True)
class Pstn:
    from_number: str
    to_number: str


@dataclass(frozen=True, slots=True)
class CallInfo:
    communication_user_id: str | None
    pstn: Pstn | None


@dataclass(frozen=True, slots=True)
class Invite:
    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Redeemed:
    user_id: str
    display_name: str


def friend_doc_id(user_id: str) -> str:
    return f"friend:{user_id}"


def invite_index_pk(user_id: str) -> str:
    return f"owner:{user_id}"


def pair_key(a: str, b: str) -> str:
    """The `pair` work key: both ids, sorted, joined by a character no id may hold."""
    first, second = sorted((a, b))
    return f"{first}\n{second}"


def pair_pk(a: str, b: str) -> str:
    """The pair document's partition: a digest (two 128-character ids exceed a key)."""
    return "pair:" + hashlib.sha256(pair_key(a, b).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Pair:
    """A pair's state: each user's word and generation; the statuses both see follow from it."""

    users: tuple[str, str]
    words: Mapping[str, Word | None] = field(default_factory=dict)
    generations: Mapping[str, str | None] = field(default_factory=dict)
    since: str = ""

    def other(self, user: str) -> str:
        return self.users[1] if user == self.users[0] else self.users[0]

    def word(self, user: str) -> Word | None:
        return self.words.get(user)

    def status(self, user: str) -> Status | None:
        """What `user` sees of the relation (None: nothing, no side document)."""
        mine, theirs = self.word(user), self.word(self.other(user))
        if mine == "block":
            return "blocked"
        if theirs == "block":
            return "blockedBy"  # never shown: a block is not revealed to the blocked
        if mine == "yes":
            return "accepted" if theirs == "yes" else "outgoing"
        return "incoming" if theirs == "yes" else None

    @property
    def friends(self) -> bool:
        return all(self.word(u) == "yes" for u in self.users)

    @property
    def empty(self) -> bool:
        return all(self.word(u) is None for u in self.users)

    def said(self, user: str, word: Word | None, now: str, generation: str | None) -> Pair:
        """`user` says `word` (a block clears the other's yes); `since` moves if a status does."""
        words = dict(self.words)
        generations = dict(self.generations)
        words[user] = word
        if word is not None:
            generations[user] = generation
        other = self.other(user)
        if word == "block" and words.get(other) == "yes":
            words[other] = None
        changed = replace(self, words=words, generations=generations)
        if any(changed.status(u) != self.status(u) for u in self.users):
            changed = replace(changed, since=now)
        return changed

    def settled(self, profiles: Mapping[str, ProfileInfo]) -> Pair:
        """Without what an erased (or erased and re-registered) user left: their own word, the
        other's yes to them, and the other's block of them — unless that block was made before
        they ever signed in (no generation recorded, and still no profile): a block of an id
        works before its user exists."""
        words = dict(self.words)
        generations = dict(self.generations)
        for user in self.users:
            recorded = generations.get(user)
            profile = profiles.get(user)
            gone = profile is None or (bool(recorded) and recorded != profile.generation)
            if not gone:
                continue
            other = self.other(user)
            words[user] = None
            if words.get(other) == "yes" or (words.get(other) == "block" and recorded):
                words[other] = None
        return replace(self, words=words, generations=generations)

    def doc(self) -> Doc:
        a, b = self.users
        pair: PairDoc = {
            "id": PAIR_DOC_ID,
            "pk": pair_pk(a, b),
            "users": [a, b],
            "words": {u: self.word(u) for u in self.users},
            "generations": {u: self.generations.get(u) for u in self.users},
            "since": self.since,
        }
        return cast(Doc, pair)

    @classmethod
    def blank(cls, users: tuple[str, str]) -> Pair:
        """No relation: nobody said anything."""
        return cls(users, {u: None for u in users}, {u: None for u in users}, "")

    @classmethod
    def of(cls, doc: Doc) -> Pair:
        pair = cast(PairDoc, doc)
        a, b = pair["users"]
        return cls((a, b), dict(pair["words"]), dict(pair["generations"]), pair["since"])

    @classmethod
    def from_sides(cls, a: str, b: str, sides: Mapping[str, FriendDoc]) -> Pair:
        """The pair as side documents written before pair documents existed tell it."""
        first, second = sorted((a, b))
        words: dict[str, Word | None] = {}
        for user in (first, second):
            side = sides.get(user)
            status = side["status"] if side else None
            words[user] = (
                "yes" if status in ("outgoing", "accepted") else "block" if status else None
            )
        since = max((s["since"] for s in sides.values()), default="")
        return cls((first, second), words, {first: None, second: None}, since)


_NO_INVITE = "No such invite code."  # unknown, used, expired, blocked: one answer
_NO_USER = "No such user."  # unknown and blocking: one answer


class _NeedLimits(Exception):
    """Raised inside a change: a new relation appeared; count before writing it."""

    def __init__(self, users: list[str]) -> None:
        super().__init__("limits")
        self.users = users


class _NeedUnused(Exception):
    """Raised inside a change: the owner is at the code limit; find which codes are spent."""


class FriendsService:
    """Friend relations between app users, their call-info, and invite codes."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        profiles: Profiles,
        work: Work,
        contact: ContactLookup | None = None,
        direct_threads: DirectThreads | None = None,
        pstn_caller_id: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._profiles = profiles
        self._work = work
        self._contact = contact
        self._direct_threads = direct_threads
        self._pstn_caller_id = pstn_caller_id
        self._clock = clock

    # --- reads ----------------------------------------------------------------------------------

    async def list_friends(
        self, caller: Caller, status: ListedStatus, page_size: int, continuation: str | None
    ) -> FriendPage:
        """One page of the caller's relations in one status, newest first: one query, and one
        `Profiles.get_many` for the page's names and (accepted friends') ACS identities.

        A user without a profile (erased; the `pair` reconciler is removing the relation) is
        left out, so a page may be shorter than asked.
        """
        page = await self._store.query(
            FRIENDS,
            caller.user_id,
            where={"status": status},
            order_by="since",
            descending=True,
            limit=page_size,
            continuation=continuation,
        )
        docs = [cast(FriendDoc, d) for d in page.items]
        profiles = await self._profiles.get_many([d["userId"] for d in docs]) if docs else {}
        items = [
            FriendView(
                user_id=d["userId"],
                display_name=profiles[d["userId"]].display_name,
                communication_user_id=(
                    profiles[d["userId"]].communication_user_id
                    if d["status"] == "accepted"
                    else None
                ),
                status=cast(ListedStatus, d["status"]),
                since=d["since"],
            )
            for d in docs
            if d["userId"] in profiles
        ]
        return FriendPage(items, page.continuation)

    async def are_friends(self, user_id: str, other_id: str) -> bool:
        """Whether the pair's truth says friends (one ReadMany): what any access needs."""
        if user_id == other_id:
            return False
        pair, _, _ = await self._load(user_id, other_id)
        return pair.friends

    async def accepted_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Which of `others` are `user_id`'s friends, by the pairs' truth: one ReadMany of every
        pair document (and both sides, for pairs from before pair documents), for a page of
        others (clubs: who may see whose ACS id)."""
        wanted = [o for o in dict.fromkeys(others) if o != user_id]
        if not wanted:
            return set()
        keys: list[tuple[str, str]] = []
        for other in wanted:
            keys += [
                (pair_pk(user_id, other), PAIR_DOC_ID),
                (user_id, friend_doc_id(other)),
                (other, friend_doc_id(user_id)),
            ]
        pairs: dict[str, Pair] = {}
        accepted: set[tuple[str, str]] = set()
        for doc in await self._store.read_many(FRIENDS, keys):
            if doc["id"] == PAIR_DOC_ID:
                pairs[doc["pk"]] = Pair.of(doc)
            elif doc.get("status") == "accepted":
                accepted.add((doc["pk"], doc["userId"]))
        found: set[str] = set()
        for other in wanted:
            pair = pairs.get(pair_pk(user_id, other))
            if (
                pair.friends
                if pair is not None
                else ((user_id, other) in accepted and (other, user_id) in accepted)
            ):
                found.add(other)
        return found

    async def blockers_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Which of `others` have blocked `user_id`, by the pairs' truth: one ReadMany of every
        pair document (and the blockers' sides, for pairs from before pair documents), for up
        to a page of others (meetings: a blocker is an unknown invitee to the one blocked)."""
        wanted = [o for o in dict.fromkeys(others) if o != user_id]
        if not wanted:
            return set()
        keys: list[tuple[str, str]] = []
        for other in wanted:
            keys += [(pair_pk(user_id, other), PAIR_DOC_ID), (other, friend_doc_id(user_id))]
        pairs: dict[str, Pair] = {}
        legacy: set[str] = set()
        for doc in await self._store.read_many(FRIENDS, keys):
            if doc["id"] == PAIR_DOC_ID:
                pairs[doc["pk"]] = Pair.of(doc)
            elif doc.get("status") == "blocked":
                legacy.add(str(doc["pk"]))
        found: set[str] = set()
        for other in wanted:
            pair = pairs.get(pair_pk(user_id, other))
            if pair.word(other) == "block" if pair is not None else other in legacy:
                found.add(other)
        return found

    async def blocked_by(self, user_id: str, other_id: str) -> bool:
        """Whether `other_id` has blocked `user_id`, by the pair's truth (one ReadMany): to
        `user_id`, `other_id` is then indistinguishable from an unknown id on every route."""
        if user_id == other_id:
            return False
        pair, _, _ = await self._load(user_id, other_id)
        return pair.word(other_id) == "block"

    async def call_info(self, caller: Caller, other_id: str) -> CallInfo:
        """What the caller needs to call an accepted friend; anyone else is 404. Two reads."""
        if not await self.are_friends(caller.user_id, other_id):
            raise errors.NotFound(_NO_USER)
        contact = await self._contact(other_id) if self._contact is not None else None
        if contact is None:  # erased meanwhile
            raise errors.NotFound(_NO_USER)
        acs_id, number = contact
        pstn = Pstn(self._pstn_caller_id, number) if self._pstn_caller_id and number else None
        return CallInfo(acs_id, pstn)

    # --- changes --------------------------------------------------------------------------------

    async def request(self, caller: Caller, other_id: str) -> Status:
        """Send a friend request, or accept the other's; returns the caller's side's status."""
        me = caller.user_id
        if other_id == me:
            raise errors.InvalidInput("userId: you cannot befriend yourself", field="userId")
        profiles = await self._profiles.get_many([me, other_id])
        if other_id not in profiles:
            raise errors.NotFound(_NO_USER)
        now = self._now()

        def decide(pair: Pair) -> Pair:
            pair = pair.settled(profiles)
            if pair.word(other_id) == "block":
                raise errors.NotFound(_NO_USER)  # the same answer as an unknown user
            if pair.word(me) == "block":
                raise errors.UserBlocked("You blocked this user; unblock them first.")
            if pair.word(me) == "yes":
                return pair
            pair = pair.said(me, "yes", now, _generation(profiles, me))
            # The other's part is recorded with the generation seen now: if they are erased
            # and sign up again, this request is not theirs.
            return replace(
                pair,
                generations={**pair.generations, other_id: _generation(profiles, other_id)},
            )

        pair = await self._change(me, other_id, decide)
        status = pair.status(me)
        assert status in ("outgoing", "accepted")
        return status

    async def remove(self, caller: Caller, other_id: str) -> None:
        """Unfriend, cancel or decline: both words go (blocks stay). Idempotent, 204 always."""
        me = caller.user_id
        if other_id == me:
            return
        now = self._now()

        def decide(pair: Pair) -> Pair:
            if "block" in (pair.word(me), pair.word(other_id)):
                return pair
            return pair.said(me, None, now, None).said(other_id, None, now, None)

        await self._change(me, other_id, decide)

    async def block(self, caller: Caller, other_id: str) -> None:
        """End any relation both ways and refuse the other's requests from now on.

        Blocking a user who never signed in works too: the answer must not tell them apart.
        """
        me = caller.user_id
        if other_id == me:
            raise errors.InvalidInput("userId: you cannot block yourself", field="userId")
        profiles = await self._profiles.get_many([other_id])
        now = self._now()

        def decide(pair: Pair) -> Pair:
            if pair.word(me) == "block":
                return pair
            pair = pair.said(me, "block", now, None)
            # The generation of the user blocked, if they exist: their erase removes the block.
            return replace(
                pair,
                generations={**pair.generations, other_id: _generation(profiles, other_id)},
            )

        await self._change(me, other_id, decide)

    async def unblock(self, caller: Caller, other_id: str) -> None:
        me = caller.user_id
        if other_id == me:
            return
        now = self._now()

        def decide(pair: Pair) -> Pair:
            return pair.said(me, None, now, None) if pair.word(me) == "block" else pair

        await self._change(me, other_id, decide)

    async def _change(self, me: str, other: str, decide: Callable[[Pair], Pair]) -> Pair:
        """Apply `decide` to the pair's truth under its etag, then write both side documents.

        Store operations: 1 ReadMany (the pair and both sides), the relation counts when a new
        relation appears (1 query per 1,000 relations of each new side), 1 read + 1 write of
        the pair, 2 side writes, and the `pair` work before and after (2 upserts).
        """
        key = pair_key(me, other)
        pk = pair_pk(me, other)
        # Decided once on what was read, before any work is recorded: a refused change (a block,
        # the limit) answers at once and leaves nothing behind.
        current, sides, found = await self._load(me, other)
        checked: set[str] = set()
        wanted = decide(current)
        new_sides = _new_relations(current, wanted)
        if new_sides:
            await self._check_limits(new_sides)
            checked.update(new_sides)
        result = wanted

        def change(doc: Doc | None) -> Doc | _Keep | None:
            nonlocal result
            # No pair document: a new pair, or one from before pair documents (its sides, as
            # read, tell it) — but one that was there at the read was deleted meanwhile.
            if doc is not None:
                before = Pair.of(doc)
            else:
                before = Pair.blank(current.users) if found else current
            after = decide(before)
            unchecked = [u for u in _new_relations(before, after) if u not in checked]
            if unchecked:
                raise _NeedLimits(unchecked)
            result = after
            if after == before:
                return KEEP  # (also a relation from before pair documents, unchanged)
            if after.empty:
                return None
            return after.doc()

        async with self._work.following((PAIR, key)):
            for _ in range(3):
                try:
                    await modify(self._store, FRIENDS, pk, PAIR_DOC_ID, change)
                    break
                except _NeedLimits as need:
                    # A relation appeared between the first read and the write: count it too.
                    await self._check_limits(need.users)
                    checked.update(need.users)
            else:
                raise errors.DependencyUnavailable("store", retry_after=1)
            await self._write_sides(result, sides)
        return result

    # --- the pair reconciler ------------------------------------------------------------------

    async def reconcile_pair(self, key: str) -> None:
        """The `pair` reconciler: the pair's truth settled (erased users' words dropped), both
        side documents as it says, and the direct thread as it says (chat's reconciler).

        Store operations: 1 ReadMany, 1 `Profiles.get_many`, a pair write only when someone's
        profile is gone, side writes only where a side differs; then chat's part.
        """
        users = key.split("\n")
        if len(users) != 2 or users[0] == users[1] or not all(users):
            log.warning("a pair work item with a malformed key was dropped")
            return
        a, b = users
        pair, sides, found = await self._load(a, b)
        profiles = await self._profiles.get_many([a, b])
        settled = pair.settled(profiles)
        if settled != pair:

            def change(doc: Doc | None) -> Doc | _Keep | None:
                nonlocal settled
                if doc is not None:
                    before = Pair.of(doc)
                else:
                    before = Pair.blank(pair.users) if found else pair
                settled = before.settled(profiles)
                if settled == before:
                    return KEEP
                return None if settled.empty else settled.doc()

            await modify(self._store, FRIENDS, pair_pk(a, b), PAIR_DOC_ID, change)
        await self._write_sides(settled, sides)
        if self._direct_threads is not None:
            await self._direct_threads(a, b)

    async def _write_sides(self, pair: Pair, sides: Mapping[str, FriendDoc]) -> None:
        """Make each user's side document say what the pair says, where `sides` (as read)
        differs. Unconditional writes of a copy: a stale one is followed by the reconciler."""
        for owner in pair.users:
            status = pair.status(owner)
            have = sides.get(owner)
            if status is None:
                if have is not None:
                    await self._store.delete(FRIENDS, owner, friend_doc_id(pair.other(owner)))
                continue
            if have is not None and have["status"] == status and have["since"] == pair.since:
                continue
            side: FriendDoc = {
                "id": friend_doc_id(pair.other(owner)),
                "pk": owner,
                "ownerId": owner,
                "userId": pair.other(owner),
                "status": status,
                "since": pair.since,
            }
            await self._store.upsert(FRIENDS, cast(Doc, side))

    # --- invites --------------------------------------------------------------------------------

    async def create_invite(self, caller: Caller) -> Invite:
        """A new one-time code, valid 24 h; at most MAX_LIVE_INVITES live ones per user.

        The owner's index document is written first (under its etag, so concurrent creates
        cannot both take the last slot), then the code: a failure in between leaves a listed
        code that does not exist, which costs a slot until it expires and grants nothing.
        """
        me = caller.user_id
        index_pk = invite_index_pk(me)
        code = secrets.token_urlsafe(INVITE_BYTES)
        expires = self._clock() + INVITE_LIFETIME
        expires_at = _iso(expires)
        now = self._now()
        unused: set[str] | None = None

        def change(doc: Doc | None) -> Doc:
            index = cast(InviteIndexDoc, doc) if doc is not None else None
            codes = {c: exp for c, exp in (index["codes"] if index else {}).items() if exp > now}
            if len(codes) >= MAX_LIVE_INVITES:
                if unused is None:
                    raise _NeedUnused()
                codes = {c: exp for c, exp in codes.items() if c in unused}
            if len(codes) >= MAX_LIVE_INVITES:
                raise errors.InviteLimit(
                    f"You hold {MAX_LIVE_INVITES} live invite codes; wait for one to be used "
                    "or to expire."
                )
            codes[code] = expires_at
            updated: InviteIndexDoc = {"id": "index", "pk": index_pk, "ownerId": me, "codes": codes}
            return cast(Doc, updated)

        try:
            await modify(self._store, INVITES, index_pk, "index", change)
        except _NeedUnused:
            raw = await self._store.read(INVITES, index_pk, "index")
            listed = cast(InviteIndexDoc, raw)["codes"] if raw is not None else {}
            unused = await self._unused(listed)
            await modify(self._store, INVITES, index_pk, "index", change)
        doc: InviteDoc = {
            "id": code,
            "pk": code,
            "ownerId": me,
            "createdAt": now,
            "expiresAt": expires_at,
            "used": False,
            "usedBy": None,
            "ttl": int(INVITE_LIFETIME.total_seconds()) + 3600,
        }
        await self._store.create(INVITES, cast(Doc, doc))
        return Invite(code, expires)

    async def redeem_invite(self, caller: Caller, code: str) -> Redeemed:
        """Spend a code (one conditional write: exactly one redeemer wins) and befriend its owner.

        Unknown, used, expired and blocked codes all answer the same 404. The redeemer who spent
        a code may repeat the call until the friendship is recorded (a 503 in between); after
        that a spent code never befriends again (not even after an unfriend).
        """
        me = caller.user_id
        if not _CODE_SHAPE.fullmatch(code):
            raise errors.NotFound(_NO_INVITE)
        raw = await self._store.read(INVITES, code, code)
        invite = cast(InviteDoc, raw) if raw is not None else None
        if invite is None or invite["expiresAt"] <= self._now():
            raise errors.NotFound(_NO_INVITE)
        owner = invite["ownerId"]
        if owner == me:
            raise errors.OwnInvite("This is your own invite code; share it with someone else.")
        if invite["used"] and invite["usedBy"] != _redeemer(code, me):
            raise errors.NotFound(_NO_INVITE)
        profiles = await self._profiles.get_many([me, owner])
        if owner not in profiles:  # the owner was erased (their codes go with them)
            raise errors.NotFound(_NO_INVITE)
        pair, _, _ = await self._load(me, owner)
        if "block" in (pair.word(me), pair.word(owner)):
            raise errors.NotFound(_NO_INVITE)
        if invite["used"] and invite.get("befriended", True):
            # The redeemer again, after the friendship was recorded: the same answer while it
            # lasts; once it ended, the one-time code never befriends again.
            if pair.friends:
                return Redeemed(owner, profiles[owner].display_name)
            raise errors.NotFound(_NO_INVITE)
        if not invite["used"]:
            spent: InviteDoc = {
                **invite,
                "used": True,
                "usedBy": _redeemer(code, me),
                "befriended": False,
            }
            try:
                invite = cast(
                    InviteDoc,
                    await self._store.replace(INVITES, _strip(cast(Doc, spent)), invite["_etag"]),
                )
            except (PreconditionFailed, DocumentNotFound):
                raise errors.NotFound(_NO_INVITE) from None
        now = self._now()

        def decide(pair: Pair) -> Pair:
            pair = pair.settled(profiles)
            if "block" in (pair.word(me), pair.word(owner)):
                raise errors.NotFound(_NO_INVITE)  # a block landed meanwhile: it wins
            for user in (owner, me):
                if pair.word(user) != "yes":
                    pair = pair.said(user, "yes", now, _generation(profiles, user))
            return pair

        await self._change(me, owner, decide)
        done: InviteDoc = {**invite, "befriended": True}
        # Missed when the code expired away or its owner was erased: nothing left to finish.
        with contextlib.suppress(PreconditionFailed, DocumentNotFound):
            await self._store.replace(INVITES, _strip(cast(Doc, done)), invite["_etag"])
        return Redeemed(owner, profiles[owner].display_name)

    async def _unused(self, codes: Mapping[str, str]) -> set[str]:
        """The codes among `codes` that still exist unused (one ReadMany)."""
        docs = await self._store.read_many(INVITES, [(c, c) for c in codes])
        return {d["id"] for d in docs if not d.get("used")}

    # --- erase ----------------------------------------------------------------------------------

    async def purge_user(self, user_id: str, *, later: bool = False) -> None:
        """An erased user's relations and invite codes (the `erasure` reconciler calls this).

        Fans out: one `pair` work item per relation, recorded page by page (a query per 1,000
        relations); each pair's reconciler, finding the user's profile gone, drops their words,
        both side documents and the direct thread. The user's live invite codes (at most 20)
        are deleted here. Idempotent: a second run records the same (coalesced) work again.
        `later`: the work is due after the grace period, for a caller that deletes the profile
        only after this returns.
        """
        record = self._work.before if later else self._work.now
        continuation: str | None = None
        while True:
            page: Page = await self._store.query(
                FRIENDS, user_id, limit=_COUNT_PAGE, continuation=continuation
            )
            keys = [pair_key(user_id, cast(FriendDoc, d)["userId"]) for d in page.items]
            for start in range(0, len(keys), _FAN_OUT):
                await asyncio.gather(*(record(PAIR, key) for key in keys[start : start + _FAN_OUT]))
            continuation = page.continuation
            if continuation is None:
                break
        index = await self._store.read(INVITES, invite_index_pk(user_id), "index")
        if index is not None:
            for code in cast(InviteIndexDoc, index)["codes"]:
                await self._store.delete(INVITES, code, code)
            await self._store.delete(INVITES, invite_index_pk(user_id), "index")

    # --- helpers --------------------------------------------------------------------------------

    async def _load(self, a: str, b: str) -> tuple[Pair, dict[str, FriendDoc], bool]:
        """The pair's truth, both side documents and whether the pair document exists, in one
        ReadMany. A pair with no pair document but side documents is one from before pair
        documents: its sides tell it."""
        keys = [(pair_pk(a, b), PAIR_DOC_ID), (a, friend_doc_id(b)), (b, friend_doc_id(a))]
        docs = await self._store.read_many(FRIENDS, keys)
        pair_doc: Doc | None = None
        sides: dict[str, FriendDoc] = {}
        for doc in docs:
            if doc["id"] == PAIR_DOC_ID and doc["pk"] == keys[0][0]:
                pair_doc = doc
            elif doc["pk"] in (a, b):
                sides[doc["pk"]] = cast(FriendDoc, doc)
        if pair_doc is not None:
            return Pair.of(pair_doc), sides, True
        return Pair.from_sides(a, b, sides), sides, False

    async def _all(self, user_id: str) -> AsyncIterator[FriendDoc]:
        """Every relation document of one user, page by page (one partition)."""
        continuation: str | None = None
        while True:
            page: Page = await self._store.query(
                FRIENDS, user_id, limit=_COUNT_PAGE, continuation=continuation
            )
            for doc in page.items:
                yield cast(FriendDoc, doc)
            if page.continuation is None:
                return
            continuation = page.continuation

    async def _check_limits(self, users: Sequence[str]) -> None:
        """FriendLimit if any of `users` already has MAX_RELATIONS relations (blocks excluded).

        Counted by two count queries per user (Cosmos `SELECT VALUE COUNT(1)`, index-served:
        everything but the user's blocks, less the hidden sides of blocks of them), only when a
        new relation is made: no counter document, so no count to drift after a failure.
        """
        counts = await asyncio.gather(*(self._count(user) for user in users))
        if any(count >= MAX_RELATIONS for count in counts):
            raise errors.FriendLimit(
                f"At most {MAX_RELATIONS} friends and pending requests per user."
            )

    async def _count(self, user_id: str) -> int:
        counted, blocked_by = await asyncio.gather(
            self._store.count(FRIENDS, user_id, where_not={"status": "blocked"}),
            self._store.count(FRIENDS, user_id, where={"status": "blockedBy"}),
        )
        return counted - blocked_by

    def _now(self) -> str:
        return _iso(self._clock())


def _new_relations(before: Pair, after: Pair) -> list[str]:
    """Users for whom `after` makes a relation that counts toward their limit and was not there."""
    return [
        u
        for u in after.users
        if before.status(u) in _NO_RELATION and after.status(u) not in _NO_RELATION
    ]


def _generation(profiles: Mapping[str, ProfileInfo], user: str) -> str | None:
    profile = profiles.get(user)
    return profile.generation if profile is not None else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _strip(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _redeemer(code: str, user_id: str) -> str:
    """Who spent a code, as a digest: enough to let the same user finish a half-done redeem,
    and nothing that names them once they are erased (the code is another user's document,
    which their erase cannot find). Keyed by the code, so digests do not link across codes."""
    return hashlib.sha256(f"{code}\x00{user_id}".encode()).hexdigest()
