"""Clubs, the group-call registry: persistent spaces whose members share the active group call.

Truth and copies (docs/reactions.md). The `clubs` partition of a club (pk = clubId) holds the truth:
- `club`: name, owner, visibility, `deleted` (the mark a delete sets), and `memberCount`, a
  copy of the number of member records;
- `member:<userId>`: one per member; its existence *is* the membership and guards the call;
- `invite:<userId>`: one per pending invitation (turn 3: the owner invites, the user accepts);
- `call`: the active call: a group call id, or (CLUB_CALLS=rooms) an ACS room id;
- `room:<roomId>` (rooms mode): one per ACS room this club created and has not deleted yet — the
  registry's own record of what exists in ACS, so no room outlives its call unnoticed;
- `roster:<userId>` (rooms mode): the member is on the roster of room `roomId` (with their ACS
  id and role), written before the ACS call that puts them there and confirmed after it.
Everything else is a copy, kept by the reconcilers below and never trusted for a decision:
`memberships/{userId}/{clubId}` (the user's index of their clubs),
`memberships/{userId}/invite:{clubId}` (the invitee's index of their invitations), the count,
the club's chat seats and thread listings (the chat capability), the call index and the
call-started pushes (the calls capability).

Requests change the truth for the caller and record the work that follows (`Work.following`),
so they stay O(1) or O(page) in store operations; the reconcilers (`Runtime.reactions`) make
the copies agree, level-triggered and idempotent:
- `reconcile_member("<clubId>\\n<userId>")`: one user's records in one club — a member or
  invitee whose profile is gone (or was re-created: another generation) is removed; an expired
  invitation is removed; the user's membership and invitation copies exist exactly when the
  records do. O(1).
- `reconcile_club(clubId)`: the count (the member records, counted page by page), an owner who
  is a member (the longest-standing member takes over; none left: the club is deleted), a call
  whose starter is erased no longer names them; a deleted club is purged a few pages per run
  (then the run queues itself again), its club document last. It then queues the club's chat
  (`club-chat`) and call (`call`) reconcilers.
- `settle_rooms(clubId)` (run by the `call` reconciler): every room record but the active
  call's is deleted in ACS, then the record goes (a cleared call, a replaced one, a loser's).

Rooms mode (docs/club-calls-in-rooms.md): PUT call creates an ACS room valid CALL_IDLE_HOURS
with the starter on its roster; a member's GET call puts the caller on the roster (owner
Presenter, members Attendee) once per room: a confirmed roster record makes later GETs cost no
ACS call. Leaving, being removed and erase take the person off the roster in `reconcile_member`.

Roles are not stored per member: the club document's `ownerId` is the one owner. The count is
a copy, so a join is never refused because of it alone: only a count at the cap is checked
against the member records themselves (a bounded count, at most MAX_MEMBERS / 1000 queries).
Concurrent joins at the very edge may pass the cap by their number; the count shows it.

Cost of the hot paths (pinned in tests, reported by the benchmark): GET call = 1 `read_many`
(rooms mode too, once the caller's roster record is confirmed; their first GET adds 1 read, 2
roster writes, the work records and 1 ACS Rooms call);
PUT call = that + 1 conditional write + the work records; GET /api/clubs = 1 query + 1
`read_many`; join, leave, invite = 1 `read_many`, a profile read and 2 or 3 writes + the work
records; GET members = 1 `read_many` + 1 query + 2 `read_many` (names, friendships).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NotRequired, Protocol, TypedDict, cast

from switchboard import errors
from switchboard.ports import (
    Doc,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    PreconditionFailed,
    RoomNotFound,
    RoomParticipant,
    RoomRole,
    RoomsProvider,
)
from switchboard.services.documents import KEEP, _Keep, modify
from switchboard.services.hooks import ProfileInfo, Profiles
from switchboard.services.reactions import Work

log = logging.getLogger("switchboard.clubs")

CLUBS = "clubs"
MEMBERSHIPS = "memberships"
CLUB_DOC = "club"
CALL_DOC = "call"
MAX_MEMBERS = 10_000
# Pending invitations per club: the owner cannot flood the app with them.
MAX_INVITATIONS = 100
INVITATION_DAYS = 30
# GET /api/clubs is one query page: a user's first this-many clubs (by the time they joined).
LIST_LIMIT = 1000
# GET /api/me/club-invitations: the newest this-many pending invitations.
INVITATIONS_LIMIT = 100
_PAGE = 100
_COUNT_PAGE = 1000
# A purge run deletes this many pages of records, then queues itself again.
_PURGE_PAGES = 5

# Reconciler kinds (Runtime.reactions).
KIND_CLUB = "club"
KIND_MEMBER = "club-member"
KIND_CHAT = "club-chat"
KIND_CALL = "call"

Visibility = Literal["open", "invite"]
Role = Literal["owner", "member"]
Standing = Literal["member", "invited"]


class ClubDoc(TypedDict):
    """`clubs/{clubId}/club`: the club itself."""

    id: str
    pk: str
    type: Literal["club"]
    clubId: str
    name: str
    ownerId: str
    visibility: Visibility
    memberCount: int  # a copy of the number of member records (reconcile_club)
    createdAt: str
    # Set by DELETE: reads treat the club as gone, reconcile_club purges it.
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
    # The member's profile generation when they joined: an erased and re-registered user of
    # the same id is not this member (None: recorded before generations existed).
    generation: NotRequired[str | None]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class InviteDoc(TypedDict):
    """`clubs/{clubId}/invite:<userId>`: a pending invitation; the user is not a member."""

    id: str
    pk: str
    type: Literal["invite"]
    clubId: str
    userId: str
    invitedAt: str
    expiresAt: str
    generation: str | None
    # Who invited (the owner then): an invitation of an erased inviter goes with them.
    invitedBy: NotRequired[str]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class CallDoc(TypedDict):
    """`clubs/{clubId}/call`: the club's active call (first registration wins): a group call
    id, or in rooms mode the id of the ACS room the server created (the other is None)."""

    id: str
    pk: str
    type: Literal["call"]
    clubId: str
    groupCallId: str | None
    roomId: NotRequired[str | None]
    # None once the member who started it is erased (reconcile_club).
    startedBy: str | None
    startedAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class RoomDoc(TypedDict):
    """`clubs/{clubId}/room:<roomId>`: an ACS room this club created and has not yet deleted."""

    id: str
    pk: str
    type: Literal["room"]
    clubId: str
    roomId: str
    createdAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class RosterDoc(TypedDict):
    """`clubs/{clubId}/roster:<userId>`: the user is (or is being put) on room `roomId`'s roster
    as `communicationUserId` in `role`; `confirmed` once ACS said so."""

    id: str
    pk: str
    type: Literal["roster"]
    clubId: str
    userId: str
    roomId: str
    communicationUserId: str
    role: RoomRole
    confirmed: bool
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class MembershipDoc(TypedDict):
    """`memberships/{userId}/{clubId}`: the user's index of the clubs they are in (a copy)."""

    id: str
    pk: str
    clubId: str
    userId: str
    clubName: str
    joinedAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class InvitationDoc(TypedDict):
    """`memberships/{userId}/invite:<clubId>`: the invitee's index of their invitations (a
    copy; `type` keeps it out of the clubs list, which asks for documents without one)."""

    id: str
    pk: str
    type: Literal["invitation"]
    clubId: str
    userId: str
    invitedAt: str
    expiresAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


def member_doc_id(user_id: str) -> str:
    return f"member:{user_id}"


def invite_doc_id(user_id: str) -> str:
    return f"invite:{user_id}"


def room_doc_id(room_id: str) -> str:
    return f"room:{room_id}"


def roster_doc_id(user_id: str) -> str:
    return f"roster:{user_id}"


def invitation_doc_id(club_id: str) -> str:
    return f"invite:{club_id}"


def member_key(club_id: str, user_id: str) -> str:
    """The key of one user's records in one club; a newline, which no id holds, joins them."""
    return f"{club_id}\n{user_id}"


def _untyped(doc: object) -> Doc:
    return {k: v for k, v in cast(Doc, doc).items() if not k.startswith("_")}


class Relations(Protocol):
    """What clubs need of the friends capability (FriendsService implements it)."""

    async def accepted_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Which of `others` are `user_id`'s accepted friends: one batched read."""
        ...

    async def blocked_by(self, user_id: str, other_id: str) -> bool:
        """Whether `other_id` has blocked `user_id`."""
        ...


EnsureProfile = Callable[[str], Awaitable[ProfileInfo | None]]
"""The caller's own profile, created if it is their first request (the identity capability)."""

AcsIdentity = Callable[[str], Awaitable[str]]
"""The caller's own ACS identity, mapped if they have none yet (the identity capability)."""


@dataclass(frozen=True, slots=True)
class CallView:
    group_call_id: str | None
    started_by: str | None
    started_at: datetime
    room_id: str | None = None


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
class InvitedView:
    """The answer to the owner's PUT of a member: invited, or already a member."""

    user_id: str
    role: Role
    status: Standing


@dataclass(frozen=True, slots=True)
class InvitationView:
    club_id: str
    name: str
    owner_id: str
    invited_at: datetime


@dataclass(frozen=True, slots=True)
class MemberView:
    user_id: str
    display_name: str | None
    communication_user_id: str | None
    role: Role
    joined_at: datetime
    status: Standing


@dataclass(frozen=True, slots=True)
class MemberPageView:
    items: list[MemberView]
    continuation: str | None


@dataclass(frozen=True, slots=True)
class ActiveCallInfo:
    """A club's active call as the calls capability needs it (its push and its index)."""

    club_id: str
    club_name: str
    group_call_id: str | None
    started_by: str | None
    started_at: datetime
    room_id: str | None = None

    @property
    def call_id(self) -> str:
        """What ACS events name the call by: its room id (rooms mode) or group call id."""
        return cast(str, self.room_id or self.group_call_id)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One batched read of a club's documents as one user sees them."""

    club: ClubDoc | None  # None when missing or being deleted
    member: MemberDoc | None
    invite: InviteDoc | None
    call: CallDoc | None
    roster: RosterDoc | None  # asked for by `roster=True`
    others: dict[str, Doc]  # further documents asked for, by id


# The continuation of an owner's member list once the members are done: the invitees follow.
_INVITEES = "i:"


class ClubsService:
    """Clubs, their members and invitations, and the active group call (module docstring)."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        work: Work,
        profiles: Profiles,
        ensure_profile: EnsureProfile | None = None,
        relations: Relations | None = None,
        call_idle_hours: int = 12,
        rooms: RoomsProvider | None = None,
        acs_identity: AcsIdentity | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`rooms`: club calls are ACS rooms (CLUB_CALLS=rooms), which needs `acs_identity`;
        None: group calls."""
        if rooms is not None and acs_identity is None:
            raise ValueError("rooms mode needs the users' ACS identities (acs_identity)")
        self._rooms = rooms
        self._acs_identity = acs_identity
        self._store = store
        self._work = work
        self._profiles = profiles
        self._ensure_profile = ensure_profile
        self._relations = relations
        self._idle = timedelta(hours=call_idle_hours)
        self._clock = clock

    # --- clubs --------------------------------------------------------------------------------

    async def create_club(self, user_id: str, name: str, visibility: Visibility) -> ClubView:
        """A new club owned by `user_id`, its only member.

        Written index first, club document last: a failure part-way leaves records no one can
        reach (no club document), which the club's reconciler removes.
        """
        club_id = uuid.uuid4().hex
        generation = await self._own_generation(user_id)
        now = self._now()
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
        async with self._work.following(
            (KIND_CLUB, club_id), (KIND_MEMBER, member_key(club_id, user_id))
        ):
            await self._store.upsert(MEMBERSHIPS, _untyped(self._membership(club, user_id, now)))
            await self._store.create(
                CLUBS, _untyped(self._member(club_id, user_id, now, generation))
            )
            await self._store.create(CLUBS, _untyped(club))
        return self._club_view(club, user_id, is_member=True, call=None)

    async def get_club(self, user_id: str, club_id: str) -> ClubView:
        """Members, and anyone for an open club; the call and chat thread for members only."""
        snap = await self._snapshot(club_id, user_id, call=True)
        club = self._visible(snap, members_only=False)
        return self._club_view(club, user_id, is_member=snap.member is not None, call=snap.call)

    async def require_member(self, user_id: str, club_id: str) -> ClubView:
        """The club if `user_id` is a member; NotFound otherwise, as for an outsider (for the
        capabilities that act on a member's behalf: SMS invitations, chat)."""
        snap = await self._snapshot(club_id, user_id, call=True)
        if snap.club is None or snap.member is None:
            raise errors.NotFound("No such club.")
        return self._club_view(snap.club, user_id, is_member=True, call=snap.call)

    async def list_clubs(self, user_id: str) -> list[ClubView]:
        """The caller's clubs with their active calls: one query and one batched read.

        The membership index is a copy: a club is listed only if its member record says so.
        """
        page = await self._store.query(
            MEMBERSHIPS, user_id, where={"type": None}, order_by="joinedAt", limit=LIST_LIMIT
        )
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
            if club is None or club["deleted"] or (club_id, member_doc_id(user_id)) not in found:
                continue
            call = cast(CallDoc | None, found.get((club_id, CALL_DOC)))
            views.append(self._club_view(club, user_id, is_member=True, call=call))
        return views

    async def delete_club(self, user_id: str, club_id: str) -> None:
        """The owner deletes the club: O(1) here — it is marked deleted (everyone sees 404 from
        now on) and its reconciler purges the members, invitations, call and chat."""
        snap = await self._snapshot(club_id, user_id)
        club = self._visible(snap, members_only=True)
        if club["ownerId"] != user_id:
            raise errors.NotClubOwner("Only the club's owner can delete it.")
        async with self._work.following((KIND_CLUB, club_id)):
            await self._mark_deleted(club_id)

    # --- members and invitations ---------------------------------------------------------------

    async def join(self, user_id: str, club_id: str) -> MembershipView:
        """Join an open club, or accept an invitation to any club (idempotent); an invite club
        is 404 for anyone not invited."""
        snap = await self._snapshot(club_id, user_id, invite=True)
        club = snap.club
        invite = snap.invite if snap.invite is not None and self._live(snap.invite) else None
        if club is None or (
            snap.member is None and invite is None and club["visibility"] != "open"
        ):
            raise errors.NotFound("No such club.")
        if snap.member is not None:
            return self._membership_view(club, snap.member)
        await self._check_room(club)
        generation = await self._own_generation(user_id)
        now = self._now()
        member = self._member(club_id, user_id, now, generation)
        async with self._work.following(
            (KIND_CLUB, club_id), (KIND_MEMBER, member_key(club_id, user_id))
        ):
            await self._store.upsert(MEMBERSHIPS, _untyped(self._membership(club, user_id, now)))
            try:
                await self._store.create(CLUBS, _untyped(member))
            except DocumentExists:
                # A concurrent request of the same user joined first.
                existing = await self._store.read(CLUBS, club_id, member_doc_id(user_id))
                member = cast(MemberDoc, existing or member)
            if snap.invite is not None:
                await self._drop_invite(club_id, user_id)
        return self._membership_view(club, member)

    async def invite(self, owner_id: str, club_id: str, user_id: str) -> InvitedView:
        """The owner invites a user (docs/club-invitations.md): a member only once they accept.

        An unknown user, an erased one and one who blocked the owner get the same 404. A member
        (the owner too) is answered as such; a pending invitation is answered again (idempotent).
        """
        snap = await self._snapshot(club_id, owner_id, invite_of=user_id)
        club = self._visible(snap, members_only=True)
        if club["ownerId"] != owner_id:
            raise errors.NotClubOwner("Only the club's owner can invite members.")
        if user_id == owner_id or member_doc_id(user_id) in snap.others:
            return InvitedView(
                user_id, "owner" if user_id == club["ownerId"] else "member", "member"
            )
        profile = (await self._profiles.get_many([user_id])).get(user_id)
        if profile is None or (
            self._relations is not None and await self._relations.blocked_by(owner_id, user_id)
        ):
            raise errors.NotFound("No such user.")
        pending = cast(InviteDoc | None, snap.others.get(invite_doc_id(user_id)))
        if (
            pending is not None
            and self._live(pending)
            and pending["generation"] == profile.generation
        ):
            return InvitedView(user_id, "member", "invited")
        await self._check_invitation_room(club_id)
        now = self._clock()
        invite: InviteDoc = {
            "id": invite_doc_id(user_id),
            "pk": club_id,
            "type": "invite",
            "clubId": club_id,
            "userId": user_id,
            "invitedAt": now.isoformat(),
            "expiresAt": (now + timedelta(days=INVITATION_DAYS)).isoformat(),
            "generation": profile.generation,
            "invitedBy": owner_id,
        }
        async with self._work.following(
            (KIND_CLUB, club_id), (KIND_MEMBER, member_key(club_id, user_id))
        ):
            # Copy first, truth last: a failure between leaves a copy the listing ignores.
            await self._store.upsert(MEMBERSHIPS, _untyped(self._invitation(invite)))
            await self._store.upsert(CLUBS, _untyped(invite))
        return InvitedView(user_id, "member", "invited")

    async def list_invitations(self, user_id: str) -> list[InvitationView]:
        """The caller's pending invitations, newest first: one query and one batched read (the
        index is a copy; the club's invitation record decides)."""
        page = await self._store.query(
            MEMBERSHIPS,
            user_id,
            where={"type": "invitation"},
            order_by="invitedAt",
            descending=True,
            limit=INVITATIONS_LIMIT,
        )
        club_ids = [cast(InvitationDoc, doc)["clubId"] for doc in page.items]
        if not club_ids:
            return []
        keys = [(c, d) for c in club_ids for d in (CLUB_DOC, invite_doc_id(user_id))]
        found = {(d["pk"], d["id"]): d for d in await self._store.read_many(CLUBS, keys)}
        views = []
        for club_id in club_ids:
            club = cast(ClubDoc | None, found.get((club_id, CLUB_DOC)))
            invite = cast(InviteDoc | None, found.get((club_id, invite_doc_id(user_id))))
            if club is None or club["deleted"] or invite is None or not self._live(invite):
                continue
            views.append(
                InvitationView(
                    club_id,
                    club["name"],
                    club["ownerId"],
                    datetime.fromisoformat(invite["invitedAt"]),
                )
            )
        return views

    async def remove_member(self, caller_id: str, club_id: str, user_id: str) -> None:
        """The owner removes a member or withdraws an invitation; a member leaves (own id); an
        invitee declines (own id)."""
        snap = await self._snapshot(club_id, caller_id, invite_of=user_id)
        if user_id == caller_id:
            invite = snap.others.get(invite_doc_id(user_id))
            if snap.club is not None and snap.member is not None:
                await self._leave(snap.club, user_id)
                return
            if snap.club is not None and invite is not None:
                async with self._work.following((KIND_MEMBER, member_key(club_id, user_id))):
                    await self._drop_invite(club_id, user_id)
                return
            self._visible(snap, members_only=True)  # raises the outsider's error
            raise errors.NotFound("Not a member of this club.")
        club = self._visible(snap, members_only=True)
        if club["ownerId"] != caller_id:
            raise errors.NotClubOwner("Only the club's owner can remove other members.")
        async with self._work.following(
            (KIND_CLUB, club_id), (KIND_MEMBER, member_key(club_id, user_id))
        ):
            if member_doc_id(user_id) in snap.others:
                await self._store.delete(CLUBS, club_id, member_doc_id(user_id))
                await self._store.delete(MEMBERSHIPS, user_id, club_id)
            elif invite_doc_id(user_id) in snap.others:
                await self._drop_invite(club_id, user_id)
            # Neither: nothing to remove; the recorded work repairs a half-done earlier removal.

    async def list_members(
        self, user_id: str, club_id: str, limit: int, continuation: str | None
    ) -> MemberPageView:
        """A page of members, longest-standing first, then (to the owner only) the invitees.

        Names and ACS ids come fresh from the profiles (one batched read); an ACS id is shown
        only for the caller and the caller's accepted friends (one batched check).
        """
        snap = await self._snapshot(club_id, user_id)
        club = self._visible(snap, members_only=True)
        is_owner = club["ownerId"] == user_id
        if continuation is not None and continuation.startswith(_INVITEES):
            if not is_owner:
                raise errors.InvalidInput(
                    "continuation: not a token of this list", field="continuation"
                )
            rest = continuation.removeprefix(_INVITEES) or None
            page = await self._store.query(
                CLUBS,
                club_id,
                where={"type": "invite"},
                order_by="invitedAt",
                limit=limit,
                continuation=rest,
            )
            invites = [cast(InviteDoc, d) for d in page.items if self._live(cast(InviteDoc, d))]
            people = [(i["userId"], i["invitedAt"], "invited") for i in invites]
            next_token = _INVITEES + page.continuation if page.continuation else None
        else:
            page = await self._store.query(
                CLUBS,
                club_id,
                where={"type": "member"},
                order_by="joinedAt",
                limit=limit,
                continuation=continuation,
            )
            members = [cast(MemberDoc, d) for d in page.items]
            people = [(m["userId"], m["joinedAt"], "member") for m in members]
            next_token = page.continuation or (_INVITEES if is_owner else None)
        ids = [p[0] for p in people]
        profiles = await self._profiles.get_many(ids) if ids else {}
        friends: set[str] = set()
        if ids and self._relations is not None:
            others = [i for i in ids if i != user_id and i in profiles]
            if others:
                friends = await self._relations.accepted_among(user_id, others)
        items = []
        for person_id, since, standing in people:
            profile = profiles.get(person_id)
            shown = person_id == user_id or person_id in friends
            items.append(
                MemberView(
                    user_id=person_id,
                    display_name=profile.display_name if profile else None,
                    communication_user_id=(
                        profile.communication_user_id if profile and shown else None
                    ),
                    role="owner"
                    if person_id == club["ownerId"] and standing == "member"
                    else "member",
                    joined_at=datetime.fromisoformat(since),
                    status=cast(Standing, standing),
                )
            )
        return MemberPageView(items, next_token)

    # --- what other capabilities read ---------------------------------------------------------

    async def member_page(
        self, club_id: str, continuation: str | None, limit: int = _PAGE
    ) -> tuple[list[str], str | None]:
        """One page of member ids in join order (the calls capability streams pages of it into
        pushes; the chat capability seats the first members)."""
        page = await self._store.query(
            CLUBS,
            club_id,
            where={"type": "member"},
            order_by="joinedAt",
            limit=limit,
            continuation=continuation,
        )
        return [cast(MemberDoc, d)["userId"] for d in page.items], page.continuation

    async def live_club(self, club_id: str) -> tuple[str, str | None] | None:
        """(name, chat thread id) of a club that exists and is not being deleted; else None."""
        club = cast(ClubDoc | None, await self._store.read(CLUBS, club_id, CLUB_DOC))
        if club is None or club["deleted"]:
            return None
        return club["name"], club.get("chatThreadId")

    async def active_call(self, club_id: str) -> ActiveCallInfo | None:
        """The club's active call (registered, not idle) while the club lives: 1 read_many."""
        found = {
            d["id"]: d
            for d in await self._store.read_many(CLUBS, [(club_id, CLUB_DOC), (club_id, CALL_DOC)])
        }
        club = cast(ClubDoc | None, found.get(CLUB_DOC))
        call = cast(CallDoc | None, found.get(CALL_DOC))
        if club is None or club["deleted"] or call is None or not self._active(call):
            return None
        return ActiveCallInfo(
            club_id,
            club["name"],
            call["groupCallId"],
            call["startedBy"],
            datetime.fromisoformat(call["startedAt"]),
            call.get("roomId"),
        )

    # --- the call -----------------------------------------------------------------------------

    @property
    def rooms_mode(self) -> bool:
        return self._rooms is not None

    async def register_call(
        self, user_id: str, club_id: str, group_call_id: str | None
    ) -> tuple[CallView, bool]:
        """Register the club's active call; (the call, True) when this request registered it.

        Group mode: the member names the group call (`group_call_id`, required). Rooms mode:
        no id is taken (one is 400); the server creates the room (`_start_room`).

        First registration wins: a create (no call yet) or an etag-guarded replace (the stored
        call is older than CALL_IDLE_HOURS) that loses a race reads the winner and answers 409
        with its id. Re-registering the active call's own id is a no-op (a retried PUT). A new
        call is followed by the calls capability's reconciler (its index, the members' pushes).
        """
        if self._rooms is not None and group_call_id is not None:
            raise errors.InvalidInput(
                "groupCallId: this server makes an ACS room for each club call; send no body",
                field="groupCallId",
            )
        if self._rooms is None and group_call_id is None:
            raise errors.InvalidInput("groupCallId: Field required", field="groupCallId")
        snap = await self._snapshot(club_id, user_id, call=True)
        club = self._visible(snap, members_only=True)
        current = snap.call
        if current is not None and self._active(current):
            return self._same_or_conflict(current, group_call_id), False
        if self._rooms is not None:
            return await self._start_room(club, user_id, current), True
        assert group_call_id is not None
        call = self._call(club_id, user_id, group_call_id=group_call_id)
        try:
            async with self._work.following((KIND_CALL, club_id)):
                saved = await self._write_call(call, current)
        except (DocumentExists, PreconditionFailed, DocumentNotFound):
            winner = await self._winner(club_id)
            return self._same_or_conflict(winner, group_call_id), False
        return _call_view(cast(CallDoc, saved)), True

    async def _start_room(self, club: ClubDoc, user_id: str, current: CallDoc | None) -> CallView:
        """Rooms mode: a room valid CALL_IDLE_HOURS with the starter on its roster, recorded
        (`room:<id>`) before it becomes the club's call. A request that loses the race deletes
        its room at once (and the `call` reconciler, recorded first, does if that fails)."""
        assert self._rooms is not None
        assert self._acs_identity is not None
        club_id = club["clubId"]
        acs_id = await self._acs_identity(user_id)
        role = _room_role(club, user_id)
        started = self._clock()
        async with self._work.following((KIND_CALL, club_id)):
            room_id = await self._rooms.create_room(
                started, started + self._idle, [RoomParticipant(acs_id, role)]
            )
            record: RoomDoc = {
                "id": room_doc_id(room_id),
                "pk": club_id,
                "type": "room",
                "clubId": club_id,
                "roomId": room_id,
                "createdAt": started.isoformat(),
            }
            try:
                await self._store.create(CLUBS, _untyped(record))
            except BaseException:
                await self._drop_room(club_id, room_id)
                raise
            call = self._call(club_id, user_id, room_id=room_id, started=started)
            saved: Doc | None = None
            try:
                saved = await self._write_call(call, current)
            except (DocumentExists, PreconditionFailed, DocumentNotFound):
                # Lost the race: our room goes; the work still ends due now (not the grace
                # later), so the winner's call is followed at once.
                await self._drop_room(club_id, room_id)
            except BaseException:
                await self._drop_room(club_id, room_id)
                raise
            else:
                # The starter's roster record spares their own GET an ACS call.
                await self._store.upsert(
                    CLUBS, _untyped(self._roster(club_id, user_id, room_id, acs_id, role, True))
                )
        if saved is None:
            winner = await self._winner(club_id)
            raise errors.CallAlreadyActive(winner["groupCallId"], winner.get("roomId"))
        return _call_view(cast(CallDoc, saved))

    async def _write_call(self, call: CallDoc, current: CallDoc | None) -> Doc:
        if current is None:
            return await self._store.create(CLUBS, _untyped(call))
        return await self._store.replace(CLUBS, _untyped(call), current["_etag"])

    async def _winner(self, club_id: str) -> CallDoc:
        """The call that won the race a registration lost."""
        winner = await self._store.read(CLUBS, club_id, CALL_DOC)
        if winner is not None and self._active(cast(CallDoc, winner)):
            return cast(CallDoc, winner)
        # The winner's call was ended between our two operations: rare; the client retries.
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _drop_room(self, club_id: str, room_id: str) -> None:
        """Best effort: a room this request made but could not register goes now; if this
        fails, its record (or the recorded `call` work) lets the reconciler finish."""
        assert self._rooms is not None
        try:
            await self._rooms.delete_room(room_id)
            await self._store.delete(CLUBS, club_id, room_doc_id(room_id))
        except Exception:
            log.warning("could not delete an unregistered room now; the reconciler will")

    async def get_call(self, user_id: str, club_id: str) -> CallView:
        """The active call, for members: one batched read. In rooms mode the caller is put on
        the room's roster first, unless their confirmed roster record says they are on it."""
        snap = await self._snapshot(club_id, user_id, call=True, roster=self._rooms is not None)
        club = self._visible(snap, members_only=True)
        call = snap.call
        if call is None or not self._active(call):
            raise errors.NoActiveCall("This club has no active call.")
        room_id = call.get("roomId")
        if room_id is not None and self._rooms is not None:
            await self._seat(club, user_id, call, room_id, snap.roster)
        return _call_view(call)

    async def _seat(
        self,
        club: ClubDoc,
        user_id: str,
        call: CallDoc,
        room_id: str,
        roster: RosterDoc | None,
    ) -> None:
        """Put a member on the room's roster (idempotent). The roster record is written before
        the ACS call (unconfirmed) and confirmed after it, under `club-member` work: a leave
        racing this request is followed by a reconcile that sees the record and takes the
        person off again; a confirmed record that matches costs no ACS call at all."""
        assert self._rooms is not None
        assert self._acs_identity is not None
        role = _room_role(club, user_id)
        if (
            roster is not None
            and roster["confirmed"]
            and roster["roomId"] == room_id
            and roster["role"] == role
        ):
            return
        club_id = club["clubId"]
        acs_id = await self._acs_identity(user_id)
        async with self._work.following((KIND_MEMBER, member_key(club_id, user_id))):
            if roster is not None and roster["roomId"] != room_id:
                # On an older room's roster: that room is gone or going; off it all the same.
                await self._rooms.remove_participants(
                    roster["roomId"], [roster["communicationUserId"]]
                )
            await self._store.upsert(
                CLUBS, _untyped(self._roster(club_id, user_id, room_id, acs_id, role, False))
            )
            try:
                await self._rooms.add_or_update_participants(
                    room_id, [RoomParticipant(acs_id, role)]
                )
            except RoomNotFound:
                # ACS has no such room (deleted, or expired): the call is over.
                async with self._work.following((KIND_CALL, club_id)):
                    await self._delete_call(club_id, call)
                raise errors.NoActiveCall("This club has no active call.") from None
            await self._store.upsert(
                CLUBS, _untyped(self._roster(club_id, user_id, room_id, acs_id, role, True))
            )

    async def end_call(self, user_id: str, club_id: str) -> None:
        """A member ends the registered call (idempotent); a newer call registered meanwhile
        is left alone (the delete is etag-guarded). The `call` reconciler follows: the index
        and, in rooms mode, the room go."""
        snap = await self._snapshot(club_id, user_id, call=True)
        self._visible(snap, members_only=True)
        if snap.call is not None:
            async with self._work.following((KIND_CALL, club_id)):
                await self._delete_call(club_id, snap.call)

    async def end_call_if_current(
        self, club_id: str, group_call_id: str, ended_at: datetime | None = None
    ) -> bool:
        """Clear the club's call only if it is still `group_call_id` — a group call id, or a
        room id for a rooms call — (ACS `CallEnded` events) and was registered before
        `ended_at` (the event's time): an old event never clears a newer call, even one
        registered again under the same id. Idempotent; True when it cleared one."""
        doc = await self._store.read(CLUBS, club_id, CALL_DOC)
        if doc is None:
            return False
        call = cast(CallDoc, doc)
        if _call_id(call) != group_call_id.lower():
            return False
        if ended_at is not None and datetime.fromisoformat(call["startedAt"]) > ended_at:
            return False  # registered after that call ended: a new life of the same id
        return await self._delete_call(club_id, call)

    async def settle_rooms(self, club_id: str) -> None:
        """Reconciler step (the `call` reconciler runs it): every room this club created but
        the active call's is deleted in ACS, then its record. O(rooms not yet deleted): one
        query, usually of one or two records. Group mode: nothing (rooms of an earlier rooms
        mode end at their validUntil; their records go with the club)."""
        if self._rooms is None:
            return
        page = await self._store.query(CLUBS, club_id, where={"type": "room"}, limit=_PAGE)
        if not page.items:
            return
        active = await self.active_call(club_id)
        keep = active.room_id if active is not None else None
        for doc in page.items:
            record = cast(RoomDoc, doc)
            if record["roomId"] == keep:
                continue
            await self._rooms.delete_room(record["roomId"])
            await self._store.delete(CLUBS, club_id, record["id"], record.get("_etag"))
        if page.continuation is not None:
            await self._work.now(KIND_CALL, club_id)

    async def set_chat_thread(self, club_id: str, thread_id: str | None) -> None:
        """Record the club's chat thread (the chat capability calls it when it creates or loses
        the thread); members see it as `chatThreadId`. A club gone or going: nothing to do."""

        def change(doc: Doc | None) -> Doc | _Keep:
            if doc is None or doc["deleted"] or doc.get("chatThreadId") == thread_id:
                return KEEP
            return {**doc, "chatThreadId": thread_id}

        await modify(self._store, CLUBS, club_id, CLUB_DOC, change)

    # --- erase --------------------------------------------------------------------------------

    async def purge_user(self, user_id: str) -> None:
        """The user's records in every club go: each club they are in or invited to gets its
        member reconciler (which removes records naming a user without a profile), one page of
        their index at a time; the index entries go with them. Idempotent."""
        while True:
            page = await self._store.query(MEMBERSHIPS, user_id, limit=_PAGE)
            if not page.items:
                return
            for doc in page.items:
                club_id = str(doc["clubId"])
                await self._work.now(KIND_MEMBER, member_key(club_id, user_id))
                await self._work.now(KIND_CLUB, club_id)
                await self._store.delete(MEMBERSHIPS, user_id, doc["id"])

    # --- reconcilers --------------------------------------------------------------------------

    async def reconcile_member(self, key: str) -> None:
        """One user's records in one club agree with the truth (module docstring). O(1)."""
        club_id, _, user_id = key.partition("\n")
        found = {
            d["id"]: d
            for d in await self._store.read_many(
                CLUBS,
                [
                    (club_id, CLUB_DOC),
                    (club_id, member_doc_id(user_id)),
                    (club_id, invite_doc_id(user_id)),
                    (club_id, roster_doc_id(user_id)),
                ],
            )
        }
        club = cast(ClubDoc | None, found.get(CLUB_DOC))
        live = club is not None and not club["deleted"]
        member = cast(MemberDoc | None, found.get(member_doc_id(user_id)))
        invite = cast(InviteDoc | None, found.get(invite_doc_id(user_id)))
        inviter = invite.get("invitedBy") if invite is not None else None
        profiles = await self._profiles.get_many([user_id, *([inviter] if inviter else [])])
        profile = profiles.get(user_id)
        changed = False
        if not live:
            # A deleted club's purge removes its records itself; only the copies go here.
            member = invite = None
        if member is not None and not _same_person(profile, member.get("generation")):
            await self._store.delete(CLUBS, club_id, member["id"], member.get("_etag"))
            changed, member = True, None
        if invite is not None and (
            member is not None
            or not self._live(invite)
            or not _same_person(profile, invite["generation"])
            or (inviter is not None and inviter not in profiles)
        ):
            await self._store.delete(CLUBS, club_id, invite["id"], invite.get("_etag"))
            changed, invite = True, None
        # The user's copies follow the records.
        if member is not None and club is not None:
            current = await self._store.read(MEMBERSHIPS, user_id, club_id)
            wanted = self._membership(club, user_id, member["joinedAt"])
            if current is None or _untyped(current) != _untyped(wanted):
                await self._store.upsert(MEMBERSHIPS, _untyped(wanted))
        else:
            await self._store.delete(MEMBERSHIPS, user_id, club_id)
        if invite is not None:
            current = await self._store.read(MEMBERSHIPS, user_id, invitation_doc_id(club_id))
            wanted_invitation = self._invitation(invite)
            if current is None or _untyped(current) != _untyped(wanted_invitation):
                await self._store.upsert(MEMBERSHIPS, _untyped(wanted_invitation))
        else:
            await self._store.delete(MEMBERSHIPS, user_id, invitation_doc_id(club_id))
        roster = cast(RosterDoc | None, found.get(roster_doc_id(user_id)))
        if roster is not None and member is None:
            # Left, removed or erased: off the room's roster (ACS first, then the record).
            await self._unseat(club_id, roster)
        if changed:
            await self._work.now(KIND_CLUB, club_id)

    async def _unseat(self, club_id: str, roster: RosterDoc) -> None:
        if self._rooms is not None:
            await self._rooms.remove_participants(roster["roomId"], [roster["communicationUserId"]])
        await self._store.delete(CLUBS, club_id, roster["id"], roster.get("_etag"))

    async def reconcile_identity(self, user_id: str) -> None:
        """Reconciler (`identity`): the user's ACS identity was mapped (their first token), so
        each club they are in reconciles its chat seats (a member without one had none)."""
        continuation: str | None = None
        while True:
            page = await self._store.query(
                MEMBERSHIPS, user_id, where={"type": None}, limit=_PAGE, continuation=continuation
            )
            for doc in page.items:
                await self._work.now(KIND_CHAT, str(doc["clubId"]))
            continuation = page.continuation
            if continuation is None:
                return

    async def reconcile_club(self, club_id: str) -> None:
        """The club's copies agree with its records; a deleted club is purged (docstring)."""
        club = cast(ClubDoc | None, await self._store.read(CLUBS, club_id, CLUB_DOC))
        if club is None or club["deleted"]:
            await self._purge(club_id, club)
            return
        members: list[MemberDoc] = []
        continuation: str | None = None
        while True:
            page = await self._store.query(
                CLUBS,
                club_id,
                where={"type": "member"},
                order_by="joinedAt",
                limit=_COUNT_PAGE,
                continuation=continuation,
            )
            batch = [cast(MemberDoc, d) for d in page.items]
            profiles = await self._profiles.get_many([m["userId"] for m in batch]) if batch else {}
            for m in batch:
                if _same_person(profiles.get(m["userId"]), m.get("generation")):
                    members.append(m)
                else:  # erased (or erased and back): its own reconciler removes the record
                    await self._work.now(KIND_MEMBER, member_key(club_id, m["userId"]))
            continuation = page.continuation
            if continuation is None:
                break
        if not members:
            # Everyone left (or was erased): the club goes with them.
            await self._mark_deleted(club_id)
            await self._work.now(KIND_CLUB, club_id)
            return
        member_ids = {m["userId"] for m in members}
        successor = members[0]["userId"]
        count = len(members)

        def agree(doc: Doc | None) -> Doc | _Keep:
            if doc is None or doc["deleted"]:
                return KEEP
            new = dict(doc)
            new["memberCount"] = count
            if doc["ownerId"] not in member_ids:
                new["ownerId"] = successor  # the longest-standing member takes over
            return KEEP if new == doc else new

        await modify(self._store, CLUBS, club_id, CLUB_DOC, agree)
        await self._expire_invitations(club_id)
        await self._forget_erased_starter(club_id)
        await self._work.now(KIND_CHAT, club_id)
        await self._work.now(KIND_CALL, club_id)

    # --- internals ----------------------------------------------------------------------------

    async def _snapshot(
        self,
        club_id: str,
        user_id: str,
        *,
        call: bool = False,
        invite: bool = False,
        invite_of: str | None = None,
        roster: bool = False,
    ) -> _Snapshot:
        """The club, `user_id`'s member record (and invitation, the call, their roster
        record), and with `invite_of` that user's member and invitation records: one
        read_many."""
        keys = [(club_id, CLUB_DOC), (club_id, member_doc_id(user_id))]
        if call:
            keys.append((club_id, CALL_DOC))
        if roster:
            keys.append((club_id, roster_doc_id(user_id)))
        if invite:
            keys.append((club_id, invite_doc_id(user_id)))
        if invite_of is not None:
            keys += [(club_id, member_doc_id(invite_of)), (club_id, invite_doc_id(invite_of))]
        found = {doc["id"]: doc for doc in await self._store.read_many(CLUBS, keys)}
        raw = cast(ClubDoc | None, found.get(CLUB_DOC))
        return _Snapshot(
            club=None if raw is None or raw["deleted"] else raw,
            member=cast(MemberDoc | None, found.get(member_doc_id(user_id))),
            invite=cast(InviteDoc | None, found.get(invite_doc_id(user_id))),
            call=cast(CallDoc | None, found.get(CALL_DOC)),
            roster=cast(RosterDoc | None, found.get(roster_doc_id(user_id))),
            others=found,
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

    async def _own_generation(self, user_id: str) -> str | None:
        """The caller's profile generation (their profile made now if this is their first
        request): what their new member record remembers."""
        profile = (await self._profiles.get_many([user_id])).get(user_id)
        if profile is None and self._ensure_profile is not None:
            profile = await self._ensure_profile(user_id)
        return profile.generation if profile is not None else None

    async def _check_room(self, club: ClubDoc) -> None:
        """ClubFull only when the member records themselves reach the cap: the count is a copy
        and may be behind (counted only when it says full, at most MAX_MEMBERS / 1000 pages)."""
        if club["memberCount"] < MAX_MEMBERS:
            return
        count, continuation = 0, None
        while True:
            page = await self._store.query(
                CLUBS,
                club["clubId"],
                where={"type": "member"},
                limit=_COUNT_PAGE,
                continuation=continuation,
            )
            count += len(page.items)
            continuation = page.continuation
            if count >= MAX_MEMBERS:
                raise errors.ClubFull(f"A club has at most {MAX_MEMBERS} members.")
            if continuation is None:
                await self._work.now(KIND_CLUB, club["clubId"])  # the copy was wrong: fix it
                return

    async def _check_invitation_room(self, club_id: str) -> None:
        page = await self._store.query(
            CLUBS, club_id, where={"type": "invite"}, limit=MAX_INVITATIONS
        )
        if sum(1 for d in page.items if self._live(cast(InviteDoc, d))) >= MAX_INVITATIONS:
            raise errors.InviteLimit(f"A club has at most {MAX_INVITATIONS} pending invitations.")

    def _live(self, invite: InviteDoc) -> bool:
        return datetime.fromisoformat(invite["expiresAt"]) > self._clock()

    def _active(self, call: CallDoc) -> bool:
        return self._clock() - datetime.fromisoformat(call["startedAt"]) < self._idle

    @staticmethod
    def _same_or_conflict(current: CallDoc, group_call_id: str | None) -> CallView:
        """A retried PUT of the active group call is answered as its registration; anything
        else (any rooms-mode PUT: the server names rooms) is 409 with the active call's id."""
        if group_call_id is None or current["groupCallId"] != group_call_id:
            raise errors.CallAlreadyActive(current["groupCallId"], current.get("roomId"))
        return _call_view(current)

    def _call(
        self,
        club_id: str,
        user_id: str,
        *,
        group_call_id: str | None = None,
        room_id: str | None = None,
        started: datetime | None = None,
    ) -> CallDoc:
        return {
            "id": CALL_DOC,
            "pk": club_id,
            "type": "call",
            "clubId": club_id,
            "groupCallId": group_call_id,
            "roomId": room_id,
            "startedBy": user_id,
            "startedAt": (started or self._clock()).isoformat(),
        }

    @staticmethod
    def _roster(
        club_id: str, user_id: str, room_id: str, acs_id: str, role: RoomRole, confirmed: bool
    ) -> RosterDoc:
        return {
            "id": roster_doc_id(user_id),
            "pk": club_id,
            "type": "roster",
            "clubId": club_id,
            "userId": user_id,
            "roomId": room_id,
            "communicationUserId": acs_id,
            "role": role,
            "confirmed": confirmed,
        }

    async def _delete_call(self, club_id: str, call: CallDoc) -> bool:
        try:
            return await self._store.delete(CLUBS, club_id, CALL_DOC, call["_etag"])
        except PreconditionFailed:
            return False  # replaced by a newer call meanwhile: that one stays

    async def _drop_invite(self, club_id: str, user_id: str) -> None:
        """The invitation record first (it decides), then its copy."""
        await self._store.delete(CLUBS, club_id, invite_doc_id(user_id))
        await self._store.delete(MEMBERSHIPS, user_id, invitation_doc_id(club_id))

    async def _leave(self, club: ClubDoc, user_id: str) -> None:
        """`user_id` leaves. An owner hands the club to the longest-standing other member first
        (the sole member's leave deletes the club); if that member leaves at the same time, the
        club's reconciler hands it on again."""
        club_id = club["clubId"]
        async with self._work.following(
            (KIND_CLUB, club_id), (KIND_MEMBER, member_key(club_id, user_id))
        ):
            if club["ownerId"] == user_id:
                ids, _ = await self.member_page(club_id, None, limit=2)
                successor = next((other for other in ids if other != user_id), None)
                if successor is None:
                    await self._mark_deleted(club_id)
                    return

                def hand_over(doc: Doc | None) -> Doc | _Keep:
                    if doc is None or doc["ownerId"] != user_id:
                        return KEEP
                    return {**doc, "ownerId": successor}

                await modify(self._store, CLUBS, club_id, CLUB_DOC, hand_over)
            await self._store.delete(CLUBS, club_id, member_doc_id(user_id))
            await self._store.delete(MEMBERSHIPS, user_id, club_id)

    async def _mark_deleted(self, club_id: str) -> None:
        def mark(doc: Doc | None) -> Doc | _Keep:
            if doc is None or doc["deleted"]:
                return KEEP
            return {**doc, "deleted": True}

        await modify(self._store, CLUBS, club_id, CLUB_DOC, mark)

    async def _purge(self, club_id: str, club: ClubDoc | None) -> None:
        """A deleted (or half-created) club's records go, a few pages per run; each member's
        and invitee's copy before their record, so a crash leaves work a rerun finds. The club
        document goes last; chat and the call capability are told first (they see it gone)."""
        await self._work.now(KIND_CHAT, club_id)
        await self._work.now(KIND_CALL, club_id)
        await self._store.delete(CLUBS, club_id, CALL_DOC)
        for _ in range(_PURGE_PAGES):
            page = await self._store.query(CLUBS, club_id, limit=_PAGE)
            records = [d for d in page.items if d["id"] != CLUB_DOC]
            if not records:
                if club is not None:
                    await self._store.delete(CLUBS, club_id, CLUB_DOC)
                return
            for doc in records:
                if doc.get("type") == "room" and self._rooms is not None:
                    await self._rooms.delete_room(str(doc["roomId"]))
                if doc.get("type") == "member":
                    await self._store.delete(MEMBERSHIPS, doc["userId"], club_id)
                elif doc.get("type") == "invite":
                    await self._store.delete(MEMBERSHIPS, doc["userId"], invitation_doc_id(club_id))
                await self._store.delete(CLUBS, club_id, doc["id"])
        await self._work.now(KIND_CLUB, club_id)  # more left: the next run goes on

    async def _expire_invitations(self, club_id: str) -> None:
        """Expired invitations, and those naming an erased user — invitee or inviter — go (at
        most MAX_INVITATIONS are pending, so one page)."""
        page = await self._store.query(CLUBS, club_id, where={"type": "invite"}, limit=1000)
        invites = [cast(InviteDoc, d) for d in page.items]
        people = [i["userId"] for i in invites] + [i.get("invitedBy", "") for i in invites]
        profiles = await self._profiles.get_many([p for p in people if p]) if invites else {}
        for invite in invites:
            inviter = invite.get("invitedBy")
            if (
                not self._live(invite)
                or not _same_person(profiles.get(invite["userId"]), invite["generation"])
                or (inviter is not None and inviter not in profiles)
            ):
                await self._work.now(KIND_MEMBER, member_key(club_id, invite["userId"]))

    async def _forget_erased_starter(self, club_id: str) -> None:
        """An active call's `startedBy` never names an erased user (issue 18 §6)."""
        doc = cast(CallDoc | None, await self._store.read(CLUBS, club_id, CALL_DOC))
        if doc is None or doc["startedBy"] is None:
            return
        starter = doc["startedBy"]
        if starter in await self._profiles.get_many([starter]):
            return

        def forget(current: Doc | None) -> Doc | _Keep:
            if current is None or current.get("startedBy") != starter:
                return KEEP
            return {**current, "startedBy": None}

        await modify(self._store, CLUBS, club_id, CALL_DOC, forget)

    def _member(self, club_id: str, user_id: str, now: str, generation: str | None) -> MemberDoc:
        return {
            "id": member_doc_id(user_id),
            "pk": club_id,
            "type": "member",
            "clubId": club_id,
            "userId": user_id,
            "joinedAt": now,
            "generation": generation,
        }

    @staticmethod
    def _membership(club: ClubDoc, user_id: str, joined_at: str) -> MembershipDoc:
        return {
            "id": club["clubId"],
            "pk": user_id,
            "clubId": club["clubId"],
            "userId": user_id,
            "clubName": club["name"],
            "joinedAt": joined_at,
        }

    @staticmethod
    def _invitation(invite: InviteDoc) -> InvitationDoc:
        return {
            "id": invitation_doc_id(invite["clubId"]),
            "pk": invite["userId"],
            "type": "invitation",
            "clubId": invite["clubId"],
            "userId": invite["userId"],
            "invitedAt": invite["invitedAt"],
            "expiresAt": invite["expiresAt"],
        }

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

    def _now(self) -> str:
        return self._clock().isoformat()


def _same_person(profile: ProfileInfo | None, generation: str | None) -> bool:
    """Whether a record made for the profile generation `generation` still names a user who
    exists and is the same person (None: recorded before generations, any profile will do)."""
    return profile is not None and (generation is None or profile.generation == generation)


def _call_view(call: CallDoc) -> CallView:
    return CallView(
        group_call_id=call["groupCallId"],
        started_by=call["startedBy"],
        started_at=datetime.fromisoformat(call["startedAt"]),
        room_id=call.get("roomId"),
    )


def _call_id(call: CallDoc) -> str:
    """The id ACS events name the call by: the room's (rooms mode), else the group call's."""
    return cast(str, call.get("roomId") or call["groupCallId"])


def _room_role(club: ClubDoc, user_id: str) -> RoomRole:
    """The club's owner presents; every other member attends."""
    return "Presenter" if club["ownerId"] == user_id else "Attendee"
