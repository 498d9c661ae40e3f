"""Friends: who can I call — requests, acceptance, blocks, call-info and one-time invite codes.

Storage (docs/architecture.md#storage-model): `friends/{ownerId}` holds one document per other
user, `friend:<userId>`,
with the owner's side of the relation (outgoing, incoming, accepted, blocked) and the other's
display name and communicationUserId copied in, so a page of a list is one query.

The two sides of a friendship are two partitions and cannot be written together. Two rules make
that safe:
- access (call-info, `are_friends`, a direct chat) needs BOTH sides accepted, read in one
  ReadMany; a half-written change therefore never grants anything;
- every change writes the OTHER user's side first and the caller's own side last. After a failure
  between the two writes the caller still sees their old state (e.g. the request still
  `incoming`), gets a 503, and repeating the same request repairs the pair: each operation
  computes what both sides should be and writes only the ones that differ.

Invite codes live in `invites/{code}`; a per-owner index document (`invites/owner:<userId>`)
lists an owner's codes so the live-code limit and erase need no cross-partition query.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NotRequired, TypedDict, cast

from switchboard import errors
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    Page,
    PreconditionFailed,
)
from switchboard.services.caller import Caller
from switchboard.services.hooks import FriendshipObserver

log = logging.getLogger("switchboard.friends")

FRIENDS = "friends"
USERS = "users"
INVITES = "invites"
MAX_RELATIONS = 5000
MAX_LIVE_INVITES = 20
INVITE_LIFETIME = timedelta(hours=24)
INVITE_BYTES = 16  # 128 bits of randomness; token_urlsafe gives 22 URL-safe characters
_COUNT_PAGE = 1000  # the store's largest page: walking every relation (erase) reads this many
_ATTEMPTS = 3
_CODE_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")

Status = Literal["outgoing", "incoming", "accepted", "blocked"]
ListedStatus = Literal["outgoing", "incoming", "accepted"]


class FriendDoc(TypedDict):
    """`friends/{ownerId}` doc `friend:<userId>`: the owner's side of one relation."""

    id: str
    pk: str
    ownerId: str
    userId: str
    status: Status
    # Copies of the other user's profile, for one-query lists; empty for blocks (an erased
    # user's name must not linger in another user's block list).
    displayName: str
    communicationUserId: str | None
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


_NO_INVITE = "No such invite code."  # unknown, used, expired, blocked: one answer
_NO_USER = "No such user."  # unknown and blocking: one answer


class FriendsService:
    """Friend relations between app users, their call-info, and invite codes."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        pstn_caller_id: str | None = None,
        observers: Sequence[FriendshipObserver] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._pstn_caller_id = pstn_caller_id
        self._observers = tuple(observers)
        self._clock = clock

    # --- reads ----------------------------------------------------------------------------------

    async def list_friends(
        self, caller: Caller, status: ListedStatus, page_size: int, continuation: str | None
    ) -> FriendPage:
        """One page of the caller's relations in one status, by display name: one query.

        An accepted friend who got an ACS identity after the copy was made is filled in with one
        batched read for the whole page (only when the page has such a friend).
        """
        page = await self._store.query(
            FRIENDS,
            caller.user_id,
            where={"status": status},
            order_by="displayName",
            limit=page_size,
            continuation=continuation,
        )
        docs = [cast(FriendDoc, d) for d in page.items]
        missing = [
            (d["userId"], d["userId"])
            for d in docs
            if d["status"] == "accepted" and not d.get("communicationUserId")
        ]
        fresh: dict[str, str | None] = {}
        if missing:
            for user in await self._store.read_many(USERS, missing):
                fresh[user["id"]] = user.get("communicationUserId")
        items = [
            FriendView(
                user_id=d["userId"],
                display_name=d["displayName"],
                communication_user_id=(
                    (d.get("communicationUserId") or fresh.get(d["userId"]))
                    if d["status"] == "accepted"
                    else None
                ),
                status=cast(ListedStatus, d["status"]),
                since=d["since"],
            )
            for d in docs
        ]
        return FriendPage(items, page.continuation)

    async def are_friends(self, user_id: str, other_id: str) -> bool:
        """Whether both sides say accepted (one ReadMany): what any access by friendship needs."""
        if user_id == other_id:
            return False
        mine, theirs = await self._pair(user_id, other_id)
        return _accepted(mine) and _accepted(theirs)

    async def accepted_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Which of `others` are `user_id`'s accepted friends (both sides say so): one ReadMany
        of both sides of every pair, for a page of others (clubs: who may see whose ACS id)."""
        wanted = [o for o in dict.fromkeys(others) if o != user_id]
        if not wanted:
            return set()
        keys = [(user_id, friend_doc_id(o)) for o in wanted] + [
            (o, friend_doc_id(user_id)) for o in wanted
        ]
        accepted = {
            (doc["pk"], doc["userId"])
            for doc in await self._store.read_many(FRIENDS, keys)
            if doc.get("status") == "accepted"
        }
        return {o for o in wanted if (user_id, o) in accepted and (o, user_id) in accepted}

    async def blocked_by(self, user_id: str, other_id: str) -> bool:
        """Whether `other_id` has blocked `user_id` (one read): to `user_id`, `other_id` is then
        indistinguishable from an unknown id on every route that names a user."""
        theirs = await self._store.read(FRIENDS, other_id, friend_doc_id(user_id))
        return theirs is not None and theirs["status"] == "blocked"

    async def call_info(self, caller: Caller, other_id: str) -> CallInfo:
        """What the caller needs to call an accepted friend; anyone else is 404. Two reads."""
        if not await self.are_friends(caller.user_id, other_id):
            raise errors.NotFound(_NO_USER)
        profile = await self._store.read(USERS, other_id, other_id)
        if profile is None:  # erased meanwhile
            raise errors.NotFound(_NO_USER)
        number = profile.get("phoneNumber")
        pstn = (
            Pstn(self._pstn_caller_id, number)
            if self._pstn_caller_id and number and profile.get("phoneVerified") is True
            else None
        )
        return CallInfo(profile.get("communicationUserId"), pstn)

    # --- changes --------------------------------------------------------------------------------

    async def request(self, caller: Caller, other_id: str) -> Status:
        """Send a friend request, or accept the other's; returns the caller's side's status.

        Reads: one ReadMany of both sides, one of both profiles. Writes: at most two conditional
        ones (the other's side first, the caller's last); a side changed meanwhile makes it read
        both sides again. A new relation also counts each new side's relations.
        """
        me = caller.user_id
        if other_id == me:
            raise errors.InvalidInput("userId: you cannot befriend yourself", field="userId")
        profiles: dict[str, Doc] | None = None
        for _ in range(_ATTEMPTS):
            mine, theirs = await self._pair(me, other_id)
            if theirs is not None and theirs["status"] == "blocked":
                raise errors.NotFound(_NO_USER)  # the same answer as an unknown user
            if mine is not None and mine["status"] == "blocked":
                raise errors.UserBlocked("You blocked this user; unblock them first.")
            if _accepted(mine) and _accepted(theirs):
                return "accepted"
            if profiles is None:
                profiles = {
                    p["id"]: p
                    for p in await self._store.read_many(USERS, [(me, me), (other_id, other_id)])
                }
            other_profile = profiles.get(other_id)
            if other_profile is None:
                raise errors.NotFound(_NO_USER)
            my_profile = profiles.get(me) or {
                "displayName": (caller.name or me)[:64],
                "communicationUserId": None,
            }
            # The caller accepts when their own side says incoming: the other asked (or the
            # caller's own earlier acceptance stopped half-way). Anything else is (again) a
            # request.
            accepting = mine is not None and mine["status"] == "incoming"
            want_theirs: Status = "accepted" if accepting else "incoming"
            want_mine: Status = "accepted" if accepting else "outgoing"
            new_sides = [user for user, doc in ((other_id, theirs), (me, mine)) if doc is None]
            if new_sides:
                await self._check_limits(new_sides)
            now = self._now()
            # Conditional writes (create, or replace under the etag read): a side that changed
            # since the read (the other cancelled, blocked or asked meanwhile) makes this a
            # re-read and a new decision, never an acceptance of a request that is gone.
            try:
                if theirs is None or theirs["status"] != want_theirs:
                    await self._put(_friend(other_id, me, want_theirs, my_profile, now), theirs)
                if mine is None or mine["status"] != want_mine:
                    await self._put(_friend(me, other_id, want_mine, other_profile, now), mine)
            except (DocumentExists, PreconditionFailed, DocumentNotFound):
                continue
            return want_mine
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _put(self, doc: FriendDoc, current: FriendDoc | None) -> None:
        """Write one side: create it if it was absent, else replace it under the etag read."""
        if current is None:
            await self._store.create(FRIENDS, _untyped(doc))
        else:
            await self._store.replace(FRIENDS, _untyped(doc), current.get("_etag", ""))

    async def remove(self, caller: Caller, other_id: str) -> None:
        """Unfriend, cancel or decline: both sides go (blocks stay). Idempotent, 204 always."""
        me = caller.user_id
        if other_id == me:
            return
        mine, theirs = await self._pair(me, other_id)
        ended = _accepted(mine) or _accepted(theirs)
        if theirs is not None and theirs["status"] != "blocked":
            await self._store.delete(FRIENDS, other_id, friend_doc_id(me))
        if mine is not None and mine["status"] != "blocked":
            await self._store.delete(FRIENDS, me, friend_doc_id(other_id))
        # A repeat (nothing left on either side) tells the observers again: one that failed the
        # first time (chat could not delete the pair's thread) is repaired by the natural retry.
        if ended or (mine is None and theirs is None):
            await self._ended(me, other_id)

    async def block(self, caller: Caller, other_id: str) -> None:
        """End any relation both ways and refuse the other's requests from now on.

        Blocking a user who never signed in works too: the answer must not tell them apart.
        """
        me = caller.user_id
        if other_id == me:
            raise errors.InvalidInput("userId: you cannot block yourself", field="userId")
        mine, theirs = await self._pair(me, other_id)
        ended = _accepted(mine) or _accepted(theirs)
        if theirs is not None and theirs["status"] != "blocked":
            await self._store.delete(FRIENDS, other_id, friend_doc_id(me))
        repeat = theirs is None and mine is not None and mine["status"] == "blocked"
        if mine is None or mine["status"] != "blocked":
            blocked = _friend(me, other_id, "blocked", {"displayName": ""}, self._now())
            await self._store.upsert(FRIENDS, _untyped(blocked))
        if ended or repeat:  # a repeat repairs an observer that failed the first time
            await self._ended(me, other_id)

    async def unblock(self, caller: Caller, other_id: str) -> None:
        me = caller.user_id
        mine = await self._store.read(FRIENDS, me, friend_doc_id(other_id))
        if mine is not None and mine["status"] == "blocked":
            await self._store.delete(FRIENDS, me, friend_doc_id(other_id))

    # --- invites --------------------------------------------------------------------------------

    async def create_invite(self, caller: Caller) -> Invite:
        """A new one-time code, valid 24 h; at most MAX_LIVE_INVITES live ones per user.

        The owner's index document is written first (under its etag, so concurrent creates
        cannot both take the last slot), then the code: a failure in between leaves a listed
        code that does not exist, which costs a slot until it expires and grants nothing.
        """
        me = caller.user_id
        index_pk = invite_index_pk(me)
        for _ in range(_ATTEMPTS):
            now = self._now()
            raw = await self._store.read(INVITES, index_pk, "index")
            index = cast(InviteIndexDoc, raw) if raw is not None else None
            codes = {c: exp for c, exp in (index["codes"] if index else {}).items() if exp > now}
            if len(codes) >= MAX_LIVE_INVITES:
                codes = await self._unused(codes)
            if len(codes) >= MAX_LIVE_INVITES:
                raise errors.InviteLimit(
                    f"You hold {MAX_LIVE_INVITES} live invite codes; wait for one to be used "
                    "or to expire."
                )
            code = secrets.token_urlsafe(INVITE_BYTES)
            expires = self._clock() + INVITE_LIFETIME
            expires_at = _iso(expires)
            codes[code] = expires_at
            updated: InviteIndexDoc = {"id": "index", "pk": index_pk, "ownerId": me, "codes": codes}
            try:
                if index is None:
                    await self._store.create(INVITES, _untyped(updated))
                else:
                    await self._store.replace(INVITES, _untyped(updated), index["_etag"])
            except (DocumentExists, PreconditionFailed, DocumentNotFound):
                continue  # another create of the same user landed first: re-read, re-count
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
            await self._store.create(INVITES, _untyped(doc))
            return Invite(code, expires)
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def redeem_invite(self, caller: Caller, code: str) -> Redeemed:
        """Spend a code (one conditional write: exactly one redeemer wins) and befriend its owner.

        Unknown, used, expired and blocked codes all answer the same 404. The redeemer who spent
        a code may repeat the call while one side is accepted: it finishes an acceptance that
        stopped half-way (a failure before the first side's write needs a new code).
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
        mine, theirs = await self._pair(me, owner)
        if any(d is not None and d["status"] == "blocked" for d in (mine, theirs)):
            raise errors.NotFound(_NO_INVITE)
        if invite["used"] and not (_accepted(mine) or _accepted(theirs)):
            # A spent code only finishes an acceptance one side already holds: once both sides
            # are gone (an unfriend), repeating it must not re-friend the owner behind their back.
            raise errors.NotFound(_NO_INVITE)
        profiles = {
            p["id"]: p for p in await self._store.read_many(USERS, [(me, me), (owner, owner)])
        }
        owner_profile = profiles.get(owner)
        if owner_profile is None:  # the owner was erased (their codes go with them)
            raise errors.NotFound(_NO_INVITE)
        if not invite["used"]:
            new_sides = [user for user, doc in ((owner, theirs), (me, mine)) if doc is None]
            if new_sides:
                await self._check_limits(new_sides)
            spent: InviteDoc = {**invite, "used": True, "usedBy": _redeemer(code, me)}
            try:
                await self._store.replace(INVITES, _untyped(spent), invite["_etag"])
            except (PreconditionFailed, DocumentNotFound):
                raise errors.NotFound(_NO_INVITE) from None
        my_profile = profiles.get(me) or {
            "displayName": (caller.name or me)[:64],
            "communicationUserId": None,
        }
        now = self._now()
        for _ in range(_ATTEMPTS):
            # Conditional writes: a side changed since the read (a block landed meanwhile) is
            # read again, and a block then wins over the code.
            try:
                if not _accepted(theirs):
                    await self._put(_friend(owner, me, "accepted", my_profile, now), theirs)
                if not _accepted(mine):
                    await self._put(_friend(me, owner, "accepted", owner_profile, now), mine)
            except (DocumentExists, PreconditionFailed, DocumentNotFound):
                mine, theirs = await self._pair(me, owner)
                if any(d is not None and d["status"] == "blocked" for d in (mine, theirs)):
                    raise errors.NotFound(_NO_INVITE) from None
                continue
            return Redeemed(owner, str(owner_profile.get("displayName") or owner))
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _unused(self, codes: dict[str, str]) -> dict[str, str]:
        """The codes among `codes` that still exist unused (one ReadMany)."""
        docs = await self._store.read_many(INVITES, [(c, c) for c in codes])
        alive = {d["id"] for d in docs if not d.get("used")}
        return {c: exp for c, exp in codes.items() if c in alive}

    # --- hooks: profile changes and erase -------------------------------------------------------

    async def profile_changed(self, user_id: str, display_name: str) -> None:
        """Refresh the copy of `user_id`'s name on the other side of each of their relations."""
        async for mine in self._all(user_id):
            if mine["status"] == "blocked":
                continue
            other = mine["userId"]
            for _ in range(_ATTEMPTS):
                raw = await self._store.read(FRIENDS, other, friend_doc_id(user_id))
                if raw is None or raw["status"] == "blocked" or raw["displayName"] == display_name:
                    break
                try:
                    await self._store.replace(
                        FRIENDS, {**_strip(raw), "displayName": display_name}, raw["_etag"]
                    )
                    break
                except (PreconditionFailed, DocumentNotFound):
                    continue

    async def purge_user(self, user_id: str) -> None:
        """Remove `user_id` from every friends list, and their blocks and live invite codes.

        Each other side goes before the user's own document, so a retried erase finds what is
        left and finishes.
        """
        ended: list[str] = []
        async for mine in self._all(user_id):
            other = mine["userId"]
            if mine["status"] != "blocked":
                theirs = await self._store.read(FRIENDS, other, friend_doc_id(user_id))
                if theirs is not None and theirs["status"] != "blocked":
                    await self._store.delete(FRIENDS, other, friend_doc_id(user_id))
                if mine["status"] == "accepted":
                    ended.append(other)
            await self._store.delete(FRIENDS, user_id, mine["id"])
        index = await self._store.read(INVITES, invite_index_pk(user_id), "index")
        if index is not None:
            for code in cast(InviteIndexDoc, index)["codes"]:
                await self._store.delete(INVITES, code, code)
            await self._store.delete(INVITES, invite_index_pk(user_id), "index")
        for other in ended:
            await self._ended(user_id, other)

    # --- helpers --------------------------------------------------------------------------------

    async def _pair(self, me: str, other: str) -> tuple[FriendDoc | None, FriendDoc | None]:
        """(my side about other, other's side about me) in one ReadMany."""
        docs = await self._store.read_many(
            FRIENDS, [(me, friend_doc_id(other)), (other, friend_doc_id(me))]
        )
        mine = theirs = None
        for doc in docs:
            if doc["pk"] == me and doc["id"] == friend_doc_id(other):
                mine = cast(FriendDoc, doc)
            elif doc["pk"] == other:
                theirs = cast(FriendDoc, doc)
        return mine, theirs

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

        Counted by one count query per user (Cosmos `SELECT VALUE COUNT(1)`, index-served),
        only when a new relation is made: no counter document, so no third write per change and
        no count to drift after a failure.
        """
        counts = await asyncio.gather(*(self._count(user) for user in users))
        if any(count >= MAX_RELATIONS for count in counts):
            raise errors.FriendLimit(
                f"At most {MAX_RELATIONS} friends and pending requests per user."
            )

    async def _count(self, user_id: str) -> int:
        return await self._store.count(FRIENDS, user_id, where_not={"status": "blocked"})

    async def _ended(self, user_id: str, other_id: str) -> None:
        for observer in self._observers:
            try:
                await observer.friendship_ended(user_id, other_id)
            except Exception:
                log.warning("a friendship observer failed", exc_info=True)

    def _now(self) -> str:
        return _iso(self._clock())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _accepted(doc: FriendDoc | None) -> bool:
    return doc is not None and doc["status"] == "accepted"


def _friend(owner: str, other: str, status: Status, profile: Doc, now: str) -> FriendDoc:
    return {
        "id": friend_doc_id(other),
        "pk": owner,
        "ownerId": owner,
        "userId": other,
        "status": status,
        "displayName": str(profile.get("displayName") or ("" if status == "blocked" else other)),
        "communicationUserId": None if status == "blocked" else profile.get("communicationUserId"),
        "since": now,
    }


def _untyped(doc: FriendDoc | InviteDoc | InviteIndexDoc) -> Doc:
    return cast(Doc, doc)


def _strip(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _redeemer(code: str, user_id: str) -> str:
    """Who spent a code, as a digest: enough to let the same user finish a half-done redeem,
    and nothing that names them once they are erased (the code is another user's document,
    which their erase cannot find). Keyed by the code, so digests do not link across codes."""
    return hashlib.sha256(f"{code}\x00{user_id}".encode()).hexdigest()
