"""Chat threads: the controller owns the ACS chat threads — one per club, one per pair of friends
who chat, and each Teams meeting's — and answers "what ongoing threads do we have?".

Clients send and read messages with ACS directly, with their own tokens; the controller decides
who is in which thread (with `TOKEN_SCOPES=chat.join.limited,voip` clients cannot create threads
or change who is in them: docs/chat.md).

Storage
- `threads/{userId}`: one document per thread the user is in (`club:<clubId>`,
  `direct:<friendId>`, `meeting:<meetingId>`), with `since` for newest-first order, so
  `GET /api/threads` is one single-partition query whatever the number of threads.
- `system/direct:<hash of the pair>`: a pair's direct thread ledger (idempotency token, then the
  ACS thread id). A copy of the friends capability's truth: it exists, with its ACS thread and
  both listings, iff the pair are friends and one of them asked (`PUT /api/friends/{id}/thread`);
  kept by `reconcile_direct`, which the `pair` reconciler runs (docs/reactions.md).
- `system/club:<clubId>`: a club's thread, its idempotency token, and `listed` (who has the
  thread in their list, as this capability last made it).

Club threads are copies kept by a reconciler (`reconcile_club_thread`, work kind `club-chat`,
queued by the clubs capability's reconciler after every change of a club): the club's member
records are the truth; the ACS thread's participant list (read from ACS itself, so a seat a
failed call left behind is found) and the members' thread listings follow them. A chat failure
never fails a club operation: the reconciler raises and is retried with backoff.

The cap: ACS holds 250 participants per thread, the controller's service identity included, so
249 members have a seat: the first 249 in join order who have an ACS identity. A member who
joins a full club is a member all the same (the join never fails), without a seat: the club's
thread is not in their list and ACS refuses them in it (they see the club's `chatThreadId`, as
every member does); they keep the club's calls. When a seated member leaves, the next in join
order takes the seat at the next run. A member who never asked for a token has no ACS identity
and no seat until their first token (nobody else's action creates an identity for them). The
thread id is told to the clubs capability (`set_chat_thread`), so `GET /api/clubs/{clubId}`
costs chat nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, Protocol, TypedDict, cast

from switchboard import errors
from switchboard.ports import (
    MAX_PARTICIPANTS_PER_ADD,
    MAX_THREAD_PARTICIPANTS,
    ChatParticipant,
    ChatProvider,
    ChatThreadFull,
    ChatThreadNotFound,
    Doc,
    DocumentExists,
    DocumentNotFound,
    DocumentStore,
    PreconditionFailed,
)
from switchboard.services.documents import KEEP, _Keep, modify
from switchboard.services.friends import PAIR as PAIR_WORK
from switchboard.services.friends import pair_key as _pair_work_key
from switchboard.services.hooks import Profiles
from switchboard.services.reactions import Work

log = logging.getLogger("switchboard.chat")

MEETING_WORK = "meeting"  # the meetings capability's reconciler kind (key: the meeting id)

THREADS = "threads"
SYSTEM = "system"
PAGE_SIZE = 50
# Seats for members: the service identity, creator of every thread, is the 250th participant.
CLUB_SEATS = MAX_THREAD_PARTICIPANTS - 1
_ATTEMPTS = 5

Kind = Literal["club", "direct", "meeting"]
# userId -> its ACS participant: mapped on first use (identity service).
ParticipantLookup = Callable[[str], Awaitable[tuple[str, str]]]


class ThreadDoc(TypedDict):
    """`threads/{userId}`: one thread the user is in."""

    id: str
    pk: str
    threadId: str | None
    kind: Kind
    topic: str
    clubId: str | None
    meetingId: str | None
    userId: str | None
    since: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class DirectPairDoc(TypedDict):
    """`system/direct:<pair hash>`: the one direct thread of two friends."""

    id: str
    pk: str
    users: list[str]
    threadId: str | None
    topic: str
    idempotencyToken: str
    createdAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class ClubThreadDoc(TypedDict):
    """`system/club:<clubId>`: a club's thread and who has it listed."""

    id: str
    pk: str
    clubId: str
    topic: str
    threadId: str | None
    idempotencyToken: str
    listed: NotRequired[dict[str, str]]  # userId -> communicationUserId
    # Before the reaction layer: who should be seated, who was, who waited.
    want: NotRequired[dict[str, list[str]]]
    have: NotRequired[dict[str, str]]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class ClubDirectory(Protocol):
    """What club threads need of the clubs capability (ClubsService implements it)."""

    async def live_club(self, club_id: str) -> tuple[str, str | None] | None:
        """(name, recorded chat thread id) of a club that exists; None when gone or going."""
        ...

    async def member_page(
        self, club_id: str, continuation: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """A page of member ids in join order."""
        ...

    async def set_chat_thread(self, club_id: str, thread_id: str | None) -> None:
        """Record the club's thread id (members see it as `chatThreadId`)."""
        ...


def _listed(doc: ClubThreadDoc) -> dict[str, str]:
    if "listed" in doc:
        return dict(doc["listed"])
    # A record from before the reaction layer: everyone it seated or meant to seat.
    old = {user: entry[0] for user, entry in doc.get("want", {}).items()}
    old.update(doc.get("have", {}))
    return old


@dataclass(frozen=True, slots=True)
class ThreadView:
    thread_id: str | None
    kind: Kind
    topic: str
    club_id: str | None
    meeting_id: str | None
    user_id: str | None


@dataclass(frozen=True, slots=True)
class ThreadPage:
    items: list[ThreadView]
    continuation: str | None


# What `GET /api/client-config` says in embedded mode: plainly not an ACS resource.
LOCAL_ENDPOINT = "local://embedded"


@dataclass(frozen=True, slots=True)
class ClientConfigView:
    """What a client needs to build its ACS ChatClient and CallClient (no secret in it)."""

    acs_endpoint: str
    token_scopes: tuple[str, ...]
    pstn_caller_id: str | None


class ChatService:
    """The controller's chat threads and each user's list of them."""

    def __init__(
        self,
        store: DocumentStore,
        chat: ChatProvider,
        participant: ParticipantLookup,
        *,
        are_friends: Callable[[str, str], Awaitable[bool]] | None = None,
        clubs: ClubDirectory | None = None,
        profiles: Profiles | None = None,
        work: Work | None = None,
        client_config: ClientConfigView | None = None,
        club_seats: int = CLUB_SEATS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._chat = chat
        self._participant = participant
        self._are_friends = are_friends
        self._clubs = clubs
        self._profiles = profiles
        self._work = work
        self._client_config = client_config or ClientConfigView(LOCAL_ENDPOINT, ("chat",), None)
        self._club_seats = club_seats
        self._clock = clock

    # --- the caller's threads -----------------------------------------------------------------

    def client_config(self) -> ClientConfigView:
        """The ACS endpoint, the scopes a token may carry and the app's caller id."""
        return self._client_config

    async def list_threads(
        self, user_id: str, continuation: str | None, page_size: int = PAGE_SIZE
    ) -> ThreadPage:
        """The user's threads, newest first: one single-partition query."""
        page = await self._store.query(
            THREADS,
            user_id,
            order_by="since",
            descending=True,
            limit=page_size,
            continuation=continuation,
        )
        return ThreadPage([_view(cast(ThreadDoc, d)) for d in page.items], page.continuation)

    # --- direct threads -----------------------------------------------------------------------
    #
    # The pair's truth is the friends capability's pair document; the thread is a copy of
    # "friends, and one of them asked for it". `system/direct:<digest>` is the ledger of what
    # exists (the idempotency token, then the ACS thread id), written BEFORE the ACS thread is
    # made, so whatever a crash or a race leaves, a later run finds and removes or finishes.
    # Every path that makes a thread records it, then reads the truth again and removes what it
    # made if the pair are no longer friends; a removal deletes the listings, then the ACS
    # thread, then the ledger. Between those two orders no interleaving of a block (or
    # unfriend, or erase) with a first `PUT …/thread` leaves a live thread behind.

    async def open_direct_thread(self, user_id: str, friend_id: str) -> ThreadView:
        """The pair's one direct thread, created on the first call from either side.

        Accepted friends only; anyone else gets 404 (as if the user did not exist). Store: the
        friendship (1 ReadMany), the ledger read or create with the `pair` work around it, then
        the pair's direct reconciler inline (so the answer carries the thread id).
        """
        if friend_id == user_id or not await self._friends_now(user_id, friend_id):
            raise errors.NotFound("No such friend.")
        key = _pair_key(user_id, friend_id)
        async with self._following_pair(user_id, friend_id):
            if await self._read_pair(key) is None:
                fresh: DirectPairDoc = {
                    "id": key,
                    "pk": key,
                    "users": sorted((user_id, friend_id)),
                    "threadId": None,
                    "topic": "",
                    "idempotencyToken": str(uuid.uuid4()),
                    "createdAt": self._now(),
                }
                # A concurrent first call from the other side made it: theirs is used.
                with contextlib.suppress(DocumentExists):
                    await self._store.create(SYSTEM, _untyped(fresh))
            pair = await self.reconcile_direct(user_id, friend_id)
        if pair is None or not pair["threadId"]:
            raise errors.NotFound("No such friend.")
        return ThreadView(pair["threadId"], "direct", _direct_topic(pair), None, None, friend_id)

    async def reconcile_direct(self, a: str, b: str) -> DirectPairDoc | None:
        """The pair's direct thread as the truth says (the `pair` reconciler calls this).

        No ledger: nothing was asked for, nothing to do (1 read). A ledger and the pair not
        friends (or either profile gone): listings, ACS thread and ledger removed. Friends: the
        ACS thread made (its token makes a retry return the same one), recorded, listed for
        both; then the truth read again, and all of it removed if the friendship ended meanwhile.
        """
        key = _pair_key(a, b)
        pair = await self._read_pair(key)
        if pair is None:
            return None
        if not await self._direct_allowed(a, b):
            await self._remove_direct(a, b)
            return None
        if pair["threadId"] is None:
            made = await self._create_direct_thread(pair)
            if made is None:
                await self._remove_direct(a, b)
                return None
            pair = made
        await self._list_direct(pair)
        if not await self._direct_allowed(a, b):
            await self._remove_direct(a, b)
            return None
        return pair

    async def _direct_allowed(self, a: str, b: str) -> bool:
        if not await self._friends_now(a, b):
            return False
        if self._profiles is None:
            return True
        return len(await self._profiles.get_many([a, b])) == 2

    async def _friends_now(self, a: str, b: str) -> bool:
        return self._are_friends is not None and await self._are_friends(a, b)

    def _following_pair(self, a: str, b: str) -> contextlib.AbstractAsyncContextManager[None]:
        if self._work is None:
            return contextlib.nullcontext()
        return self._work.following((PAIR_WORK, _pair_work_key(a, b)))

    async def _create_direct_thread(self, pair: DirectPairDoc) -> DirectPairDoc | None:
        """Make the ACS thread of a ledger without one and record it; None when the pair's
        ledger went meanwhile (then the thread made here is deleted again) or a user is gone."""
        try:
            people = [await self._chat_participant(u) for u in pair["users"]]
        except errors.NotFound:
            return None  # a user without a profile (erased): no thread, and no identity for them
        topic = " & ".join(p.display_name for p in people)[:250]
        token = pair["idempotencyToken"]
        # Both racing callers send the pair's one idempotency token: ACS makes one thread.
        thread_id = await self._chat.create_thread(topic, people, idempotency_token=token)

        def record(current: Doc | None) -> Doc | _Keep | None:
            if current is None or current["idempotencyToken"] != token or current["threadId"]:
                return KEEP
            return {**_strip(current), "threadId": thread_id, "topic": topic}

        saved = await modify(self._store, SYSTEM, pair["id"], pair["id"], record)
        if saved is None or saved["idempotencyToken"] != token:
            # Removed while the thread was being made: nobody else knows this thread.
            await self._chat.delete_thread(thread_id)
            return None
        return cast(DirectPairDoc, saved)

    async def _list_direct(self, pair: DirectPairDoc) -> None:
        """Both users' listings of the thread, written where missing or different."""
        a, b = pair["users"]
        topic = _direct_topic(pair)
        have = {
            d["pk"]: d
            for d in await self._store.read_many(THREADS, [(a, f"direct:{b}"), (b, f"direct:{a}")])
        }
        for owner, other in ((a, b), (b, a)):
            listed = have.get(owner)
            if listed is not None and listed["threadId"] == pair["threadId"]:
                continue
            await self._store.upsert(
                THREADS,
                _untyped(
                    self._thread_doc(
                        owner, f"direct:{other}", pair["threadId"], "direct", topic, user=other
                    )
                ),
            )

    async def _remove_direct(self, a: str, b: str) -> None:
        """Listings, then the ACS thread, then the ledger (under its etag: a thread recorded
        meanwhile is deleted too). A chat failure raises and leaves the ledger for the retry."""
        key = _pair_key(a, b)
        await self._store.delete(THREADS, a, f"direct:{b}")
        await self._store.delete(THREADS, b, f"direct:{a}")
        for _ in range(_ATTEMPTS):
            pair = await self._read_pair(key)
            if pair is None:
                return
            if pair["threadId"]:
                await self._chat.delete_thread(pair["threadId"])
            try:
                await self._store.delete(SYSTEM, key, key, pair.get("_etag"))
                return
            except (PreconditionFailed, DocumentNotFound):
                continue  # a thread was recorded meanwhile: delete that one too
        raise errors.DependencyUnavailable("store", retry_after=1)

    # --- MeetingObserver ------------------------------------------------------------------------

    async def meeting_created(
        self, meeting_id: str, subject: str, thread_id: str | None, participant_ids: Sequence[str]
    ) -> None:
        await self.meeting_listed(meeting_id, subject, thread_id, participant_ids)

    async def meeting_deleted(self, meeting_id: str, participant_ids: Sequence[str]) -> None:
        await self.meeting_unlisted(meeting_id, participant_ids)

    # --- club threads -------------------------------------------------------------------------

    async def reconcile_club_thread(self, club_id: str) -> None:
        """Reconciler (`club-chat`): the club's ACS thread holds exactly its seated members —
        the first CLUB_SEATS members in join order who have an ACS identity — checked against
        the chat provider's own participant list; each seated member has the thread in their
        list and nobody else has; a club gone has no thread. Idempotent; raises to be retried.

        A member without an ACS identity yet (never asked for a token) has no seat: nobody's
        action but their own makes one for them; their first token queues this again.
        """
        club = await self._clubs.live_club(club_id) if self._clubs is not None else None
        doc = await self._read_club(club_id)
        if club is None:
            await self._remove_club_thread(club_id, doc)
            return
        name, announced = club
        seats = await self._seats(club_id)
        if doc is None:
            if not seats:
                return  # nobody to seat yet: no thread
            doc = await self._create_club_record(club_id, name)
        thread_id = doc["threadId"]
        if thread_id is None and seats:
            first = list(seats.values())[:MAX_PARTICIPANTS_PER_ADD]
            # The record's one idempotency token: a rerun after a crash gets the same thread.
            thread_id = await self._chat.create_thread(
                name, first, idempotency_token=doc["idempotencyToken"]
            )
            doc = await self._update_club_record(club_id, {"threadId": thread_id})
        if thread_id is not None:
            try:
                present = set(await self._chat.list_participants(thread_id))
            except ChatThreadNotFound:
                # Deleted behind our back: a new thread (new token) on the next run.
                log.warning("a club's chat thread is gone from ACS; it will be created again")
                await self._update_club_record(
                    club_id, {"threadId": None, "idempotencyToken": str(uuid.uuid4())}
                )
                await self._work_again(club_id)
                return
            wanted = {p.communication_user_id for p in seats.values()}
            missing = [p for p in seats.values() if p.communication_user_id not in present]
            for start in range(0, len(missing), MAX_PARTICIPANTS_PER_ADD):
                try:
                    await self._chat.add_participants(
                        thread_id, missing[start : start + MAX_PARTICIPANTS_PER_ADD]
                    )
                except ChatThreadFull:
                    # Someone else filled it (removals below make room): the next run adds.
                    log.warning("a club's chat thread is full in ACS; seats converge next run")
                    await self._work_again(club_id)
            for acs_id in present - wanted:
                await self._chat.remove_participant(thread_id, acs_id)
        listed = _listed(doc)
        seated = {user: p.communication_user_id for user, p in seats.items()} if thread_id else {}
        for user in seated:
            if user not in listed or doc["topic"] != name:
                await self._store.upsert(
                    THREADS,
                    _untyped(self._thread_doc(user, f"club:{club_id}", thread_id, "club", name)),
                )
        for user in listed.keys() - seated.keys():
            await self._store.delete(THREADS, user, f"club:{club_id}")
        if listed != seated or doc["topic"] != name or "want" in doc:
            await self._update_club_record(
                club_id, {"listed": seated, "topic": name}, drop=("want", "have", "waiting")
            )
        if announced != thread_id and self._clubs is not None:
            await self._clubs.set_chat_thread(club_id, thread_id)

    async def _seats(self, club_id: str) -> dict[str, ChatParticipant]:
        """The members who hold a seat: the first `club_seats` in join order with an ACS
        identity (one member page and one batched profile read per page)."""
        seats: dict[str, ChatParticipant] = {}
        if self._clubs is None or self._profiles is None:
            return seats
        continuation: str | None = None
        while len(seats) < self._club_seats:
            ids, continuation = await self._clubs.member_page(club_id, continuation, 500)
            profiles = await self._profiles.get_many(ids) if ids else {}
            for user in ids:
                profile = profiles.get(user)
                if profile is not None and profile.communication_user_id:
                    seats[user] = ChatParticipant(
                        profile.communication_user_id, profile.display_name
                    )
                    if len(seats) >= self._club_seats:
                        break
            if continuation is None:
                break
        return seats

    async def _remove_club_thread(self, club_id: str, doc: ClubThreadDoc | None) -> None:
        """The club is gone: its thread is deleted in ACS, then leaves every list, then the
        record goes (last, so a rerun after a failure finds what is left)."""
        if doc is None:
            return
        if doc["threadId"]:
            await self._chat.delete_thread(doc["threadId"])
        for user in _listed(doc):
            await self._store.delete(THREADS, user, f"club:{club_id}")
        await self._store.delete(SYSTEM, doc["pk"], doc["id"])

    async def _create_club_record(self, club_id: str, topic: str) -> ClubThreadDoc:
        key = _club_key(club_id)

        def create(current: Doc | None) -> Doc | _Keep:
            if current is not None:
                return KEEP
            fresh: ClubThreadDoc = {
                "id": key,
                "pk": key,
                "clubId": club_id,
                "topic": topic,
                "threadId": None,
                "idempotencyToken": str(uuid.uuid4()),
                "listed": {},
            }
            return _untyped(fresh)

        saved = await modify(self._store, SYSTEM, key, key, create)
        assert saved is not None  # created, or there already
        return cast(ClubThreadDoc, saved)

    async def _update_club_record(
        self, club_id: str, fields: dict[str, Any], *, drop: Sequence[str] = ()
    ) -> ClubThreadDoc:
        key = _club_key(club_id)

        def update(current: Doc | None) -> Doc | _Keep:
            if current is None:
                raise errors.DependencyUnavailable("store", retry_after=1)  # removed meanwhile
            new = {k: v for k, v in current.items() if k not in drop}
            new.update(fields)
            return new

        saved = await modify(self._store, SYSTEM, key, key, update)
        return cast(ClubThreadDoc, saved)

    async def _work_again(self, club_id: str) -> None:
        if self._work is not None:
            await self._work.now("club-chat", club_id)

    async def _read_club(self, club_id: str) -> ClubThreadDoc | None:
        key = _club_key(club_id)
        doc = await self._store.read(SYSTEM, key, key)
        return None if doc is None else cast(ClubThreadDoc, doc)

    # --- meeting chats ------------------------------------------------------------------------

    async def meeting_listed(
        self,
        meeting_id: str,
        subject: str,
        thread_id: str | None,
        user_ids: Iterable[str],
    ) -> None:
        """List a meeting's Teams chat for its organizer and invitees (ACS users enter it by
        joining the meeting; the controller only lists it). Idempotent: one ReadMany, and a
        write only where a listing is missing or says something else (the meeting reconciler
        runs this on every pass)."""
        users = list(dict.fromkeys(user_ids))
        key = f"meeting:{meeting_id}"
        have = {d["pk"]: d for d in await self._store.read_many(THREADS, [(u, key) for u in users])}
        for user in users:
            listed = have.get(user)
            if (
                listed is not None
                and listed["threadId"] == thread_id
                and listed["topic"] == subject
            ):
                continue
            await self._store.upsert(
                THREADS,
                _untyped(self._thread_doc(user, key, thread_id, "meeting", subject, meeting_id)),
            )

    async def meeting_unlisted(self, meeting_id: str, user_ids: Iterable[str]) -> None:
        for user in dict.fromkeys(user_ids):
            await self._store.delete(THREADS, user, f"meeting:{meeting_id}")

    # --- erase (UserDataOwner) ----------------------------------------------------------------

    async def purge_user(self, user_id: str, *, later: bool = False) -> None:
        """An erased user's thread listings go; the threads they were in follow their truth.

        Fans out, page by page: each direct listing records the pair's `pair` work (its
        reconciler, finding the user's profile gone, deletes the ACS thread, the other's listing
        and the ledger), each meeting listing its meeting's `meeting` work; then the listing
        itself is deleted. Club seats follow the clubs capability's own reconcilers.
        Idempotent: a repeat finds what is left.
        `later`: the work is due after the grace period, for a caller that deletes the profile
        only after this returns.
        """
        record = (self._work.before if later else self._work.now) if self._work else None
        continuation: str | None = None
        while True:
            page = await self._store.query(THREADS, user_id, limit=1000, continuation=continuation)
            for raw in page.items:
                doc = cast(ThreadDoc, raw)
                if record is not None and doc["kind"] == "direct" and doc["userId"]:
                    await record(PAIR_WORK, _pair_work_key(user_id, doc["userId"]))
                elif record is not None and doc["kind"] == "meeting" and doc["meetingId"]:
                    await record(MEETING_WORK, doc["meetingId"])
                await self._store.delete(THREADS, user_id, doc["id"])
            continuation = page.continuation
            if continuation is None:
                break

    # --- helpers ------------------------------------------------------------------------------

    async def _chat_participant(self, user_id: str) -> ChatParticipant:
        acs_id, name = await self._participant(user_id)
        return ChatParticipant(acs_id, name)

    async def _read_pair(self, key: str) -> DirectPairDoc | None:
        doc = await self._store.read(SYSTEM, key, key)
        return None if doc is None else cast(DirectPairDoc, doc)

    def _thread_doc(
        self,
        owner: str,
        key: str,
        thread_id: str | None,
        kind: Kind,
        topic: str,
        meeting_id: str | None = None,
        *,
        user: str | None = None,
    ) -> ThreadDoc:
        return {
            "id": key,
            "pk": owner,
            "threadId": thread_id,
            "kind": kind,
            "topic": topic,
            "clubId": key.removeprefix("club:") if kind == "club" else None,
            "meetingId": meeting_id,
            "userId": user,
            "since": self._now(),
        }

    def _now(self) -> str:
        return self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _pair_key(a: str, b: str) -> str:
    """The pair's document key, the same from both sides (ids can be 128 characters each, more
    than a key holds together, so a digest of the two)."""
    first, second = sorted((a, b))
    digest = hashlib.sha256(f"{first}\n{second}".encode()).hexdigest()
    return f"direct:{digest}"


def _club_key(club_id: str) -> str:
    return f"club:{club_id}"


def _direct_topic(pair: DirectPairDoc) -> str:
    return pair["topic"] or "Direct chat"


def _view(doc: ThreadDoc) -> ThreadView:
    return ThreadView(
        thread_id=doc["threadId"],
        kind=doc["kind"],
        topic=doc["topic"],
        club_id=doc.get("clubId"),
        meeting_id=doc.get("meetingId"),
        user_id=doc.get("userId"),
    )


def _strip(doc: Any) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _untyped(doc: Any) -> Doc:
    return cast(Doc, doc)
