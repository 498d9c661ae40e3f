"""Clubs, the group-call registry: persistent spaces whose members share the active group call.

Storage (DESIGN §3). The `clubs` partition of a club (pk = clubId) holds its `club` document
(name, owner, visibility, member count), one `member:<userId>` document per member, and the
`call` document (the active group call). The `memberships` partition of a user (pk = userId)
holds one document per club the user is in, so "my clubs" is one single-partition query.

Who is a member is decided by the `member:` document alone: it guards the call. The membership
document is the user's index of their clubs. The two writes are ordered so that a failure between
them is always safe, and a retry finishes the job:
- joining writes the membership first, then the member document: a half-join leaves an index
  entry for a club the user is not yet in (the list shows only clubs whose member document
  exists), never a member without the club in their list;
- leaving deletes the member document first, then the membership: the call is out of reach at
  once; a leftover index entry is hidden by the same rule and removed by the retried leave.

Roles are not stored per member: the club document's `ownerId` is the one owner, so handing
ownership over is one conditional write. The member count is kept in the club document with
etag-guarded updates; a join reserves its place before it writes, which makes the 10,000 cap
exact under concurrency (a failed join gives its place back, best effort).

Cost of the hot paths (counted in tests and in the benchmark): GET call = 1 `read_many` (club,
caller's member document and call in one batch); PUT call = that + 1 conditional write (+ 1 read
when it loses a race); GET /api/clubs = 1 query + 1 `read_many`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NotRequired, TypedDict, cast

from switchboard import errors
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    PreconditionFailed,
)
from switchboard.services.hooks import ClubObserver

log = logging.getLogger("switchboard.clubs")

CLUBS = "clubs"
MEMBERSHIPS = "memberships"
USERS = "users"
CLUB_DOC = "club"
CALL_DOC = "call"
MAX_MEMBERS = 10_000
# GET /api/clubs is one query page: a user's first this-many clubs (by the time they joined).
LIST_LIMIT = 1000
_ATTEMPTS = 5
_CLEANUP_PAGE = 100

Visibility = Literal["open", "invite"]
Role = Literal["owner", "member"]


class ClubDoc(TypedDict):
    """`clubs/{clubId}/club`: the club itself."""

    id: str
    pk: str
    type: Literal["club"]
    clubId: str
    name: str
    ownerId: str
    visibility: Visibility
    memberCount: int
    createdAt: str
    # Set while the club is being deleted: reads treat it as gone, a retried DELETE finishes it.
    deleted: bool
    # The club's chat thread, once the chat capability creates one.
    chatThreadId: str | None
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class MemberDoc(TypedDict):
    """`clubs/{clubId}/member:<userId>`: one member; its existence is what membership means."""

    id: str
    pk: str
    type: Literal["member"]
    clubId: str
    userId: str
    joinedAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class CallDoc(TypedDict):
    """`clubs/{clubId}/call`: the club's active group call (first registration wins)."""

    id: str
    pk: str
    type: Literal["call"]
    clubId: str
    groupCallId: str
    startedBy: str
    startedAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class MembershipDoc(TypedDict):
    """`memberships/{userId}/{clubId}`: the user's index of the clubs they are in."""

    id: str
    pk: str
    clubId: str
    userId: str
    clubName: str
    joinedAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


def member_doc_id(user_id: str) -> str:
    return f"member:{user_id}"


def _untyped(doc: ClubDoc | MemberDoc | CallDoc | MembershipDoc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


@dataclass(frozen=True, slots=True)
class CallView:
    group_call_id: str
    started_by: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class ClubView:
    club_id: str
    name: str
    owner_id: str
    visibility: Visibility
    member_count: int
    role: Role | None
    active_call: CallView | None
    chat_thread_id: str | None


@dataclass(frozen=True, slots=True)
class MembershipView:
    club_id: str
    user_id: str
    role: Role
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class MemberView:
    user_id: str
    display_name: str | None
    communication_user_id: str | None
    role: Role
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class MemberPageView:
    items: list[MemberView]
    continuation: str | None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One batched read of a club's documents as one user sees them."""

    club: ClubDoc | None  # None when missing or being deleted
    raw_club: ClubDoc | None  # as stored, even while being deleted
    member: MemberDoc | None
    call: CallDoc | None


class ClubsService:
    """Clubs, their members and the active group call; see the module docstring for storage."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        call_idle_hours: int = 12,
        observers: Sequence[ClubObserver] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._idle = timedelta(hours=call_idle_hours)
        self._observers = tuple(observers)
        self._clock = clock

    # --- clubs --------------------------------------------------------------------------------

    async def create_club(self, user_id: str, name: str, visibility: Visibility) -> ClubView:
        """A new club owned by `user_id`, its only member.

        Written index first, club document last: a failure part-way leaves documents nobody can
        reach (no club document), and the retried POST makes a new club.
        """
        club_id = uuid.uuid4().hex
        now = self._clock().isoformat()
        membership: MembershipDoc = {
            "id": club_id,
            "pk": user_id,
            "clubId": club_id,
            "userId": user_id,
            "clubName": name,
            "joinedAt": now,
        }
        await self._store.create(MEMBERSHIPS, _untyped(membership))
        await self._store.create(CLUBS, _untyped(self._member(club_id, user_id, now)))
        club: ClubDoc = {
            "id": CLUB_DOC,
            "pk": club_id,
            "type": "club",
            "clubId": club_id,
            "name": name,
            "ownerId": user_id,
            "visibility": visibility,
            "memberCount": 1,
            "createdAt": now,
            "deleted": False,
            "chatThreadId": None,
        }
        await self._store.create(CLUBS, _untyped(club))
        await self._tell("member_added", lambda o: o.member_added(club_id, user_id))
        return self._club_view(club, user_id, is_member=True, call=None)

    async def get_club(self, user_id: str, club_id: str) -> ClubView:
        """Members, and anyone for an open club; the call and chat thread for members only."""
        snap = await self._snapshot(club_id, user_id)
        club = self._visible(snap, members_only=False)
        return self._club_view(club, user_id, is_member=snap.member is not None, call=snap.call)

    async def require_member(self, user_id: str, club_id: str) -> ClubView:
        """The club if `user_id` is a member; NotFound otherwise, as for an outsider (for the
        capabilities that act on a member's behalf: SMS invitations, chat)."""
        snap = await self._snapshot(club_id, user_id)
        if snap.club is None or snap.member is None:
            raise errors.NotFound("No such club.")
        return self._club_view(snap.club, user_id, is_member=True, call=snap.call)

    async def list_clubs(self, user_id: str) -> list[ClubView]:
        """The caller's clubs with their active calls: one query and one batched read."""
        page = await self._store.query(MEMBERSHIPS, user_id, order_by="joinedAt", limit=LIST_LIMIT)
        club_ids = [cast(MembershipDoc, doc)["clubId"] for doc in page.items]
        if not club_ids:
            return []
        keys = [
            (club_id, doc_id)
            for club_id in club_ids
            for doc_id in (CLUB_DOC, member_doc_id(user_id), CALL_DOC)
        ]
        found: dict[tuple[str, str], Doc] = {
            (doc["pk"], doc["id"]): doc for doc in await self._store.read_many(CLUBS, keys)
        }
        views = []
        for club_id in club_ids:
            club = cast(ClubDoc | None, found.get((club_id, CLUB_DOC)))
            # An index entry without its member document is a half-finished join or leave:
            # not (or no longer) a member, so not listed.
            if club is None or club["deleted"] or (club_id, member_doc_id(user_id)) not in found:
                continue
            call = cast(CallDoc | None, found.get((club_id, CALL_DOC)))
            views.append(self._club_view(club, user_id, is_member=True, call=call))
        return views

    async def delete_club(self, user_id: str, club_id: str) -> None:
        """The owner deletes the club: its call, members and their memberships go with it."""
        snap = await self._snapshot(club_id, user_id, call=False)
        raw = snap.raw_club
        if raw is not None and raw["deleted"] and raw["ownerId"] == user_id:
            await self._delete_club(raw)  # a retry finishes an interrupted delete
            return
        club = self._visible(snap, members_only=True)
        if club["ownerId"] != user_id:
            raise errors.NotClubOwner("Only the club's owner can delete it.")
        await self._delete_club(club)

    # --- members ------------------------------------------------------------------------------

    async def join(self, user_id: str, club_id: str) -> MembershipView:
        """Join an open club (idempotent); an invite club is 404 for a non-member."""
        snap = await self._snapshot(club_id, user_id, call=False)
        if snap.club is None or (snap.member is None and snap.club["visibility"] != "open"):
            raise errors.NotFound("No such club.")
        if snap.member is not None:
            await self._store.upsert(MEMBERSHIPS, _untyped(self._membership(snap.club, user_id)))
            return self._membership_view(snap.club, snap.member)
        return await self._add(snap.club, user_id)

    async def add_member(self, owner_id: str, club_id: str, user_id: str) -> MembershipView:
        """The owner adds a user (one who has signed in at least once); idempotent."""
        snap = await self._snapshot(club_id, owner_id, call=False)
        club = self._visible(snap, members_only=True)
        if club["ownerId"] != owner_id:
            raise errors.NotClubOwner("Only the club's owner can add members.")
        if await self._store.read(USERS, user_id, user_id) is None:
            raise errors.NotFound("No such user.")
        existing = await self._store.read(CLUBS, club_id, member_doc_id(user_id))
        if existing is not None:
            await self._store.upsert(MEMBERSHIPS, _untyped(self._membership(club, user_id)))
            return self._membership_view(club, cast(MemberDoc, existing))
        return await self._add(club, user_id)

    async def remove_member(self, caller_id: str, club_id: str, user_id: str) -> None:
        """The owner removes a member, or a member leaves (their own id)."""
        snap = await self._snapshot(club_id, caller_id, call=False)
        if user_id == caller_id:
            if not await self._leave(snap, caller_id, club_id):
                self._visible(snap, members_only=True)  # raises the outsider's error
                raise errors.NotFound("Not a member of this club.")
            return
        club = self._visible(snap, members_only=True)
        if club["ownerId"] != caller_id:
            raise errors.NotClubOwner("Only the club's owner can remove other members.")
        target = await self._store.read(CLUBS, club_id, member_doc_id(user_id))
        if target is None:
            # Not a member (any more): finish a half-done removal, else nothing to do. A leftover
            # index entry means the removal failed before the observers heard of it: tell them
            # now (chat unseats the member from the club's thread), so the retry repairs it all.
            if await self._store.delete(MEMBERSHIPS, user_id, club_id):
                await self._tell("member_removed", lambda o: o.member_removed(club_id, user_id))
            return
        await self._remove(club, user_id)

    async def list_members(
        self, user_id: str, club_id: str, limit: int, continuation: str | None
    ) -> MemberPageView:
        """A page of members, longest-standing first, with names and ACS ids read fresh from
        their profiles (one query + one batched read; no copies to keep up to date)."""
        snap = await self._snapshot(club_id, user_id, call=False)
        club = self._visible(snap, members_only=True)
        page = await self._store.query(
            CLUBS,
            club_id,
            where={"type": "member"},
            order_by="joinedAt",
            limit=limit,
            continuation=continuation,
        )
        members = [cast(MemberDoc, doc) for doc in page.items]
        profiles = {
            doc["id"]: doc
            for doc in await self._store.read_many(
                USERS, [(m["userId"], m["userId"]) for m in members]
            )
        }
        items = []
        for m in members:
            profile = profiles.get(m["userId"], {})
            items.append(
                MemberView(
                    user_id=m["userId"],
                    display_name=profile.get("displayName"),
                    communication_user_id=profile.get("communicationUserId"),
                    role="owner" if m["userId"] == club["ownerId"] else "member",
                    joined_at=datetime.fromisoformat(m["joinedAt"]),
                )
            )
        return MemberPageView(items, page.continuation)

    async def iter_member_ids(self, club_id: str) -> AsyncIterator[str]:
        """Every member's user id, page by page (for observers that fan out, e.g. push)."""
        continuation: str | None = None
        while True:
            page = await self._store.query(
                CLUBS,
                club_id,
                where={"type": "member"},
                order_by="joinedAt",
                limit=_CLEANUP_PAGE,
                continuation=continuation,
            )
            for doc in page.items:
                yield cast(MemberDoc, doc)["userId"]
            continuation = page.continuation
            if continuation is None:
                return

    # --- the call -----------------------------------------------------------------------------

    async def register_call(
        self, user_id: str, club_id: str, group_call_id: str
    ) -> tuple[CallView, bool]:
        """Register the club's active call; (the call, True) when this request registered it.

        First registration wins: a create (no call yet) or an etag-guarded replace (the stored
        call is older than CALL_IDLE_HOURS) that loses a race reads the winner and answers 409
        with its id. Re-registering the active call's own id is a no-op (a retried PUT).
        """
        snap = await self._snapshot(club_id, user_id)
        club = self._visible(snap, members_only=True)
        current = snap.call
        if current is not None and self._active(current):
            return self._same_or_conflict(current, group_call_id), False
        call: CallDoc = {
            "id": CALL_DOC,
            "pk": club_id,
            "type": "call",
            "clubId": club_id,
            "groupCallId": group_call_id,
            "startedBy": user_id,
            "startedAt": self._clock().isoformat(),
        }
        try:
            if current is None:
                saved = await self._store.create(CLUBS, _untyped(call))
            else:
                saved = await self._store.replace(CLUBS, _untyped(call), current["_etag"])
        except (DocumentExists, PreconditionFailed, DocumentNotFound):
            winner = await self._store.read(CLUBS, club_id, CALL_DOC)
            if winner is not None and self._active(cast(CallDoc, winner)):
                return self._same_or_conflict(cast(CallDoc, winner), group_call_id), False
            # The winner's call was ended between our two operations: rare; the client retries.
            raise errors.DependencyUnavailable("store", retry_after=1) from None
        view = _call_view(cast(CallDoc, saved))
        await self._tell(
            "call_started",
            lambda o: o.call_started(club_id, club["name"], group_call_id, user_id, None),
        )
        return view, True

    async def get_call(self, user_id: str, club_id: str) -> CallView:
        """The active call, for members: one batched read."""
        snap = await self._snapshot(club_id, user_id)
        self._visible(snap, members_only=True)
        if snap.call is None or not self._active(snap.call):
            raise errors.NoActiveCall("This club has no active call.")
        return _call_view(snap.call)

    async def end_call(self, user_id: str, club_id: str) -> None:
        """A member ends the registered call (idempotent); a newer call registered meanwhile
        is left alone (the delete is etag-guarded)."""
        snap = await self._snapshot(club_id, user_id)
        self._visible(snap, members_only=True)
        if snap.call is not None:
            await self._delete_call(club_id, snap.call)

    async def end_call_if_current(
        self, club_id: str, group_call_id: str, ended_at: datetime | None = None
    ) -> bool:
        """Clear the club's call only if it is still `group_call_id` (ACS `CallEnded` events)
        and was registered before `ended_at` (the event's time): an old event never clears a
        newer call, even one registered again under the same id. Idempotent; True when it
        cleared one."""
        doc = await self._store.read(CLUBS, club_id, CALL_DOC)
        if doc is None:
            return False
        call = cast(CallDoc, doc)
        if call["groupCallId"] != group_call_id.lower():
            return False
        if ended_at is not None and datetime.fromisoformat(call["startedAt"]) > ended_at:
            return False  # registered after that call ended: a new life of the same id
        return await self._delete_call(club_id, call)

    # --- erase --------------------------------------------------------------------------------

    async def set_chat_thread(self, club_id: str, thread_id: str | None) -> None:
        """Record the club's chat thread (the chat capability calls it when it creates or loses
        the thread); members see it as `chatThreadId`. A club gone or going: nothing to do."""
        found = await self._store.read(CLUBS, club_id, CLUB_DOC)
        club = cast(ClubDoc | None, found)
        if club is None or club["deleted"] or club.get("chatThreadId") == thread_id:
            return
        await self._update_club(club, lambda doc: {**doc, "chatThreadId": thread_id})

    async def purge_user(self, user_id: str) -> None:
        """UserDataOwner: the user leaves every club, as by DELETE of their own membership
        (ownership handed over, a club left empty deleted). Idempotent."""
        while True:
            page = await self._store.query(MEMBERSHIPS, user_id, limit=_CLEANUP_PAGE)
            if not page.items:
                return
            for doc in page.items:
                club_id = cast(MembershipDoc, doc)["clubId"]
                snap = await self._snapshot(club_id, user_id, call=False)
                await self._leave(snap, user_id, club_id)

    # --- internals ----------------------------------------------------------------------------

    async def _snapshot(self, club_id: str, user_id: str, *, call: bool = True) -> _Snapshot:
        keys = [(club_id, CLUB_DOC), (club_id, member_doc_id(user_id))]
        if call:
            keys.append((club_id, CALL_DOC))
        found = {doc["id"]: doc for doc in await self._store.read_many(CLUBS, keys)}
        raw = cast(ClubDoc | None, found.get(CLUB_DOC))
        return _Snapshot(
            club=None if raw is None or raw["deleted"] else raw,
            raw_club=raw,
            member=cast(MemberDoc | None, found.get(member_doc_id(user_id))),
            call=cast(CallDoc | None, found.get(CALL_DOC)),
        )

    @staticmethod
    def _visible(snap: _Snapshot, *, members_only: bool) -> ClubDoc:
        """The club if the snapshot's user may see it: an invite club is 404 for outsiders,
        an open club's members-only routes are 403 for non-members."""
        if snap.club is None:
            raise errors.NotFound("No such club.")
        if snap.member is None:
            if snap.club["visibility"] != "open":
                raise errors.NotFound("No such club.")
            if members_only:
                raise errors.NotAMember("Join the club first.")
        return snap.club

    def _active(self, call: CallDoc) -> bool:
        return self._clock() - datetime.fromisoformat(call["startedAt"]) < self._idle

    @staticmethod
    def _same_or_conflict(current: CallDoc, group_call_id: str) -> CallView:
        if current["groupCallId"] != group_call_id:
            raise errors.CallAlreadyActive(current["groupCallId"])
        return _call_view(current)

    async def _delete_call(self, club_id: str, call: CallDoc) -> bool:
        try:
            return await self._store.delete(CLUBS, club_id, CALL_DOC, call["_etag"])
        except PreconditionFailed:
            return False  # replaced by a newer call meanwhile: that one stays

    def _member(self, club_id: str, user_id: str, now: str) -> MemberDoc:
        return {
            "id": member_doc_id(user_id),
            "pk": club_id,
            "type": "member",
            "clubId": club_id,
            "userId": user_id,
            "joinedAt": now,
        }

    def _membership(self, club: ClubDoc, user_id: str, now: str | None = None) -> MembershipDoc:
        return {
            "id": club["clubId"],
            "pk": user_id,
            "clubId": club["clubId"],
            "userId": user_id,
            "clubName": club["name"],
            "joinedAt": now or self._clock().isoformat(),
        }

    async def _add(self, club: ClubDoc, user_id: str) -> MembershipView:
        """Reserve a place in the count, then index, then member document (see module doc)."""

        def reserve(doc: ClubDoc) -> ClubDoc:
            if doc["memberCount"] >= MAX_MEMBERS:
                raise errors.ClubFull(f"A club has at most {MAX_MEMBERS} members.")
            return {**doc, "memberCount": doc["memberCount"] + 1}

        club = await self._update_club(club, reserve)
        now = self._clock().isoformat()
        member = self._member(club["clubId"], user_id, now)
        try:
            await self._store.upsert(MEMBERSHIPS, _untyped(self._membership(club, user_id, now)))
            await self._store.create(CLUBS, _untyped(member))
        except DocumentExists:
            # A concurrent request of the same user added them first.
            await self._give_back_place(club)
            existing = await self._store.read(CLUBS, club["clubId"], member_doc_id(user_id))
            return self._membership_view(club, cast(MemberDoc, existing or member))
        except BaseException:
            await self._give_back_place(club)
            raise
        await self._tell("member_added", lambda o: o.member_added(club["clubId"], user_id))
        return self._membership_view(club, member)

    async def _give_back_place(self, club: ClubDoc) -> None:
        try:
            await self._update_club(club, _count_down)
        except Exception:
            log.warning("could not give back a reserved member place", exc_info=True)

    async def _leave(self, snap: _Snapshot, user_id: str, club_id: str) -> bool:
        """`user_id` leaves; False if they were not a member (a leftover index entry of theirs
        is removed: the retry of a half-finished leave)."""
        if snap.club is None or snap.member is None:
            leftover = await self._store.delete(MEMBERSHIPS, user_id, club_id)
            if leftover and snap.club is not None:
                # A half-finished leave the observers never heard of (see remove_member).
                await self._tell("member_removed", lambda o: o.member_removed(club_id, user_id))
            return leftover
        club = snap.club
        if club["ownerId"] == user_id:
            handed = await self._hand_over(club, user_id)
            if handed is None:
                return True  # the last member leaving deleted the club
            club = handed
        await self._remove(club, user_id)
        # The owner may have chosen this user as successor while they were leaving: read the
        # club once more and hand over again. With the owner's own check in `_hand_over` (the
        # successor's member document read after the hand-over is written), one of the two
        # leavers always sees the other's write, so a club never stays with a departed owner.
        fresh = cast(ClubDoc | None, await self._store.read(CLUBS, club_id, CLUB_DOC))
        if fresh is not None and not fresh["deleted"] and fresh["ownerId"] == user_id:
            await self._hand_over(fresh, user_id)
        return True

    async def _hand_over(self, club: ClubDoc, user_id: str) -> ClubDoc | None:
        """Ownership passes from `user_id` to the longest-standing other member; with none,
        the club is deleted (None). Chosen again if the successor left meanwhile."""
        leaving, owner = {user_id}, user_id
        for _ in range(_ATTEMPTS):
            successor = await self._longest_standing_other(club["clubId"], leaving)
            if successor is None:
                await self._delete_club(club)
                return None

            def hand_over(doc: ClubDoc, old: str = owner, new: str = successor) -> ClubDoc:
                return {**doc, "ownerId": new} if doc["ownerId"] == old else doc

            club = await self._update_club(club, hand_over)
            if club["ownerId"] != successor:
                return club  # settled by someone else first
            if await self._store.read(CLUBS, club["clubId"], member_doc_id(successor)):
                return club
            leaving.add(successor)  # they left as they were chosen: hand over from them
            owner = successor
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _remove(self, club: ClubDoc, user_id: str) -> None:
        """Member document first (the call is out of reach at once), then the count, then the
        index entry: the count is lowered before the one write whose failure a retry finishes
        (the retry finds no member document and cannot tell whether the count was lowered)."""
        club_id = club["clubId"]
        await self._store.delete(CLUBS, club_id, member_doc_id(user_id))
        try:
            await self._update_club(club, _count_down)
        except errors.NotFound:
            pass
        except Exception:
            # The member is out; only the count is one too high.
            log.warning("could not lower a club's member count", exc_info=True)
        await self._store.delete(MEMBERSHIPS, user_id, club_id)
        await self._tell("member_removed", lambda o: o.member_removed(club_id, user_id))

    async def _longest_standing_other(self, club_id: str, leaving: set[str]) -> str | None:
        page = await self._store.query(
            CLUBS, club_id, where={"type": "member"}, order_by="joinedAt", limit=len(leaving) + 1
        )
        others = [cast(MemberDoc, d)["userId"] for d in page.items]
        return next((other for other in others if other not in leaving), None)

    async def _delete_club(self, club: ClubDoc) -> None:
        """Mark deleted (everyone sees 404 from now on), then remove the call, every member
        with their index entry, and last the club document; a retry resumes."""
        club_id = club["clubId"]
        if not club["deleted"]:
            club = await self._update_club(club, lambda doc: {**doc, "deleted": True})
        await self._store.delete(CLUBS, club_id, CALL_DOC)
        member_ids: list[str] = []
        while True:
            page = await self._store.query(
                CLUBS, club_id, where={"type": "member"}, limit=_CLEANUP_PAGE
            )
            if not page.items:
                break
            for doc in page.items:
                member_id = cast(MemberDoc, doc)["userId"]
                await self._store.delete(MEMBERSHIPS, member_id, club_id)
                await self._store.delete(CLUBS, club_id, doc["id"])
                member_ids.append(member_id)
        await self._store.delete(CLUBS, club_id, CLUB_DOC)
        await self._tell("club_deleted", lambda o: o.club_deleted(club_id, member_ids))

    async def _update_club(self, club: ClubDoc, change: Callable[[ClubDoc], ClubDoc]) -> ClubDoc:
        """Apply `change` under the club document's etag, re-reading after a lost race."""
        for _ in range(_ATTEMPTS):
            try:
                saved = await self._store.replace(CLUBS, _untyped(change(club)), club["_etag"])
                return cast(ClubDoc, saved)
            except PreconditionFailed:
                pass
            except DocumentNotFound:
                raise errors.NotFound("No such club.") from None
            fresh = await self._store.read(CLUBS, club["clubId"], CLUB_DOC)
            if fresh is None:
                raise errors.NotFound("No such club.")
            club = cast(ClubDoc, fresh)
        raise errors.DependencyUnavailable("store", retry_after=1)

    def _club_view(
        self, club: ClubDoc, user_id: str, *, is_member: bool, call: CallDoc | None
    ) -> ClubView:
        role: Role | None = (
            ("owner" if club["ownerId"] == user_id else "member") if is_member else None
        )
        active = call if is_member and call is not None and self._active(call) else None
        return ClubView(
            club_id=club["clubId"],
            name=club["name"],
            owner_id=club["ownerId"],
            visibility=club["visibility"],
            member_count=club["memberCount"],
            role=role,
            active_call=_call_view(active) if active else None,
            chat_thread_id=club.get("chatThreadId") if is_member else None,
        )

    @staticmethod
    def _membership_view(club: ClubDoc, member: MemberDoc) -> MembershipView:
        return MembershipView(
            club_id=club["clubId"],
            user_id=member["userId"],
            role="owner" if club["ownerId"] == member["userId"] else "member",
            joined_at=datetime.fromisoformat(member["joinedAt"]),
        )

    async def _tell(self, what: str, call: Callable[[ClubObserver], Awaitable[None]]) -> None:
        """Tell every observer; a failing one is logged and never fails the club operation."""
        for observer in self._observers:
            try:
                await call(observer)
            except Exception:
                log.warning(
                    "club observer %s failed on %s",
                    type(observer).__name__,
                    what,
                    exc_info=True,
                )


def _count_down(doc: ClubDoc) -> ClubDoc:
    return {**doc, "memberCount": max(1, doc["memberCount"] - 1)}


def _call_view(call: CallDoc) -> CallView:
    return CallView(
        group_call_id=call["groupCallId"],
        started_by=call["startedBy"],
        started_at=datetime.fromisoformat(call["startedAt"]),
    )
