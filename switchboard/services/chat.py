"""Chat threads: the controller owns the ACS chat threads — one per club, one per pair of friends
who chat, and each Teams meeting's — and answers "what ongoing threads do we have?".

Clients send and read messages with ACS directly, with their own tokens; the controller decides
who is in which thread (with `TOKEN_SCOPES=chat.join.limited,voip` clients cannot create threads
or change who is in them: README "Chat threads").

Storage
- `threads/{userId}`: one document per thread the user is in (`club:<clubId>`,
  `direct:<friendId>`, `meeting:<meetingId>`), with `since` for newest-first order, so
  `GET /api/threads` is one single-partition query whatever the number of threads.
- `system/direct:<hash of the pair>`: a pair's direct thread. Its id is derived from the two user
  ids, so two concurrent first calls from both sides race on one `create`; the loser reads the
  winner's document and uses its idempotency token, so ACS makes one thread.
- `system/club:<clubId>`: a club's thread and its seats: `want` (who should be in the ACS thread),
  `have` (who the controller has put there), `waiting` (members past the cap, in join order).

Club threads and consistency. The club registry is the truth; chat follows it with no
transaction between the two systems. A club change records the new `want` first, then
converges: adds `want - have` (one call for up to 200), removes `have - want`, records `have`.
A chat failure never fails the club operation: it is logged, `want` and `have` stay apart, and
the next change of that club converges them (the repair happens at the club's next change, not
on reads, so reads stay one store call and never call ACS).

The cap: ACS holds 250 participants per thread, the controller's service identity included, so
249 members have a seat. A member who joins a full club is a member all the same (the join never
fails), without a seat: the club's thread is not in their list and ACS refuses them in it (they
see the club's `chatThreadId`, which is the club's, as every member does); they keep the club's
calls. They wait in join order (up to MAX_WAITING); when a seated member leaves, the first in
line takes the seat at that change. The thread id is told to the clubs capability
(`club_thread_changed`) when it is created or lost, so `GET /api/clubs/{clubId}` costs chat
nothing.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict, cast

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
    DocumentStore,
    PreconditionFailed,
)

log = logging.getLogger("switchboard.chat")

THREADS = "threads"
SYSTEM = "system"
PAGE_SIZE = 50
# Seats for members: the service identity, creator of every thread, is the 250th participant.
CLUB_SEATS = MAX_THREAD_PARTICIPANTS - 1
# The waiting line is kept up to this length (the document stays small); a member who joins
# behind a full line gets no seat until they join again. Clubs this large are rare.
MAX_WAITING = 1000
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
    """`system/club:<clubId>`: a club's thread and who holds its seats."""

    id: str
    pk: str
    clubId: str
    topic: str
    threadId: str | None
    idempotencyToken: str
    want: dict[str, list[str]]  # userId -> [communicationUserId, displayName]
    have: dict[str, str]  # userId -> communicationUserId
    waiting: list[list[str]]  # [userId, communicationUserId, displayName], join order
    announced: NotRequired[str | None]  # the threadId last told to the clubs capability
    _etag: NotRequired[str]
    _ts: NotRequired[int]


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
        club_topic: Callable[[str, str], Awaitable[str | None]] | None = None,
        club_thread_changed: Callable[[str, str | None], Awaitable[None]] | None = None,
        client_config: ClientConfigView | None = None,
        club_seats: int = CLUB_SEATS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._chat = chat
        self._participant = participant
        self._are_friends = are_friends
        self._club_topic = club_topic
        self._club_thread_changed = club_thread_changed
        self._client_config = client_config or ClientConfigView(LOCAL_ENDPOINT, ("chat",), None)
        self._club_seats = club_seats
        self._clock = clock

    # --- the caller's threads -----------------------------------------------------------------

    def client_config(self) -> ClientConfigView:
        """The ACS endpoint, the scopes a token may carry and the app's caller id."""
        return self._client_config

    async def list_threads(self, user_id: str, continuation: str | None) -> ThreadPage:
        """The user's threads, newest first: one single-partition query."""
        page = await self._store.query(
            THREADS,
            user_id,
            order_by="since",
            descending=True,
            limit=PAGE_SIZE,
            continuation=continuation,
        )
        return ThreadPage([_view(cast(ThreadDoc, d)) for d in page.items], page.continuation)

    # --- direct threads -----------------------------------------------------------------------

    async def open_direct_thread(self, user_id: str, friend_id: str) -> ThreadView:
        """The pair's one direct thread, created on the first call from either side.

        Accepted friends only; anyone else gets 404 (as if the user did not exist).
        """
        key = _pair_key(user_id, friend_id)
        if (
            friend_id == user_id
            or self._are_friends is None
            or not await self._are_friends(user_id, friend_id)
        ):
            # The friends capability tells us when a friendship ends, but a missed call (it
            # logs observer failures) would leave the thread: finish the removal here.
            if friend_id != user_id and await self._read_pair(key) is not None:
                try:
                    await self.remove_direct_thread(user_id, friend_id)
                except Exception:
                    log.warning("a former pair's direct thread is still there", exc_info=True)
            raise errors.NotFound("No such friend.")
        pair = await self._read_pair(key)
        if pair is None:
            fresh: DirectPairDoc = {
                "id": key,
                "pk": key,
                "users": sorted((user_id, friend_id)),
                "threadId": None,
                "topic": "",
                "idempotencyToken": str(uuid.uuid4()),
                "createdAt": self._now(),
            }
            try:
                pair = cast(DirectPairDoc, await self._store.create(SYSTEM, _untyped(fresh)))
            except DocumentExists:
                # The other side's first call won the race: use its document (and its token).
                pair = await self._read_pair(key)
                if pair is None:
                    raise errors.DependencyUnavailable("store", retry_after=1) from None
        if pair["threadId"] is None:
            pair = await self._create_direct_thread(pair)
            await self._list_direct(pair)
        elif await self._store.read(THREADS, user_id, f"direct:{friend_id}") is None:
            await self._list_direct(pair)  # an earlier call stopped before listing it
        thread_id = pair["threadId"]
        return ThreadView(thread_id, "direct", _direct_topic(pair), None, None, friend_id)

    async def _create_direct_thread(self, pair: DirectPairDoc) -> DirectPairDoc:
        people = [await self._chat_participant(u) for u in pair["users"]]
        topic = " & ".join(p.display_name for p in people)[:250]
        # Both racing callers send the pair's one idempotency token: ACS makes one thread.
        thread_id = await self._chat.create_thread(
            topic, people, idempotency_token=pair["idempotencyToken"]
        )
        updated: DirectPairDoc = {**pair, "threadId": thread_id, "topic": topic}
        try:
            return cast(
                DirectPairDoc,
                await self._store.replace(SYSTEM, _strip(updated), pair.get("_etag", "")),
            )
        except PreconditionFailed:
            # The other call recorded it first: the same thread, by the same token.
            again = await self._read_pair(pair["id"])
            return again if again is not None and again["threadId"] else updated

    async def _list_direct(self, pair: DirectPairDoc) -> None:
        a, b = pair["users"]
        topic = _direct_topic(pair)
        for owner, other in ((a, b), (b, a)):
            await self._store.upsert(
                THREADS,
                _untyped(
                    self._thread_doc(
                        owner, f"direct:{other}", pair["threadId"], "direct", topic, user=other
                    )
                ),
            )

    async def remove_direct_thread(self, user_id: str, other_id: str) -> None:
        """The pair's thread is deleted and leaves both lists (block, unfriend, erase).

        A chat failure propagates and leaves the pair's record, so the removal is finished
        later: the friends service logs the failure (its operation stands), and the next
        `PUT .../thread` from either side, now 404, or an erase deletes the thread. Two people
        who are no longer friends must not keep a channel between them.
        """
        key = _pair_key(user_id, other_id)
        pair = await self._read_pair(key)
        if pair is not None and pair["threadId"]:
            await self._chat.delete_thread(pair["threadId"])
        await self._store.delete(THREADS, user_id, f"direct:{other_id}")
        await self._store.delete(THREADS, other_id, f"direct:{user_id}")
        if pair is not None:
            await self._store.delete(SYSTEM, key, key)

    # FriendshipObserver
    async def friendship_ended(self, user_id: str, other_id: str) -> None:
        await self.remove_direct_thread(user_id, other_id)

    # --- ClubObserver ---------------------------------------------------------------------------

    async def member_added(self, club_id: str, user_id: str) -> None:
        await self.club_member_added(club_id, None, user_id)

    async def member_removed(self, club_id: str, user_id: str) -> None:
        await self.club_member_removed(club_id, user_id)

    async def club_deleted(self, club_id: str, member_ids: Sequence[str] = ()) -> None:
        await self.delete_club_thread(club_id, member_ids)

    async def call_started(
        self,
        club_id: str,
        club_name: str,
        group_call_id: str,
        started_by: str,
        member_ids: Sequence[str] | None,
    ) -> None:
        """Chat does nothing when a club's call starts."""
        return

    # --- MeetingObserver ------------------------------------------------------------------------

    async def meeting_created(
        self, meeting_id: str, subject: str, thread_id: str | None, participant_ids: Sequence[str]
    ) -> None:
        await self.meeting_listed(meeting_id, subject, thread_id, participant_ids)

    async def meeting_deleted(self, meeting_id: str, participant_ids: Sequence[str]) -> None:
        await self.meeting_unlisted(meeting_id, participant_ids)

    # --- club threads -------------------------------------------------------------------------

    async def club_thread_id(self, club_id: str, user_id: str) -> str | None:
        """The club's thread id for a member who holds a seat in it (else None): 1 read."""
        doc = await self._read_club(club_id)
        if doc is None or user_id not in doc["have"]:
            return None
        return doc["threadId"]

    async def club_member_added(self, club_id: str, club_name: str | None, user_id: str) -> None:
        """A member joined or was added: seat them (or put them in line) and converge.

        Never raises: a failure is logged and repaired at the club's next change.
        """
        try:
            acs_id, name = await self._participant(user_id)

            def seat(doc: ClubThreadDoc) -> None:
                doc["topic"] = club_name or doc["topic"]
                if user_id in doc["want"] or any(w[0] == user_id for w in doc["waiting"]):
                    return
                if len(doc["want"]) < self._club_seats:
                    doc["want"][user_id] = [acs_id, name]
                elif len(doc["waiting"]) < MAX_WAITING:
                    doc["waiting"].append([user_id, acs_id, name])

            # A club with a thread record (every join but its first member's) costs no lookup.
            doc = await self._update_club(club_id, club_name, seat, create=club_name is not None)
            if doc is None:
                # The club's first member: its new thread is named after the club.
                topic = await self._topic_of(club_id, user_id)
                doc = await self._update_club(club_id, topic, seat)
            if doc is not None:
                await self._converge(doc)
        except Exception:
            log.warning("club chat not updated after a member joined", exc_info=True)

    async def _topic_of(self, club_id: str, member_id: str) -> str | None:
        if self._club_topic is None:
            return None
        try:
            return await self._club_topic(club_id, member_id)
        except Exception:
            log.warning("could not read a club's name for its chat topic", exc_info=True)
            return None

    async def club_member_removed(self, club_id: str, user_id: str) -> None:
        """A member left or was removed: their seat goes to the first in line; converge.

        Never raises: a failure is logged and repaired at the club's next change.
        """
        try:
            await self._store.delete(THREADS, user_id, f"club:{club_id}")

            def unseat(doc: ClubThreadDoc) -> None:
                doc["waiting"] = [w for w in doc["waiting"] if w[0] != user_id]
                doc["want"].pop(user_id, None)
                while len(doc["want"]) < self._club_seats and doc["waiting"]:
                    next_id, next_acs, next_name = doc["waiting"].pop(0)
                    doc["want"][next_id] = [next_acs, next_name]

            doc = await self._update_club(club_id, None, unseat, create=False)
            if doc is not None:
                await self._converge(doc)
        except Exception:
            log.warning("club chat not updated after a member left", exc_info=True)

    async def delete_club_thread(self, club_id: str, member_ids: Sequence[str] = ()) -> None:
        """The club is gone: its thread is deleted and leaves every member's list.

        Never raises; if ACS cannot delete the thread now, its id is logged for clean-up (it
        holds no one the controller will add again).
        """
        try:
            doc = await self._read_club(club_id)
            if doc is None:
                return
            if doc["threadId"]:
                try:
                    await self._chat.delete_thread(doc["threadId"])
                except Exception:
                    log.warning(
                        "the chat thread of a deleted club could not be deleted: %s",
                        doc["threadId"],
                        exc_info=True,
                    )
            for member in set(doc["want"]) | set(doc["have"]) | set(member_ids):
                await self._store.delete(THREADS, member, f"club:{club_id}")
            await self._store.delete(SYSTEM, doc["pk"], doc["id"])
        except Exception:
            log.warning("club chat not cleaned up after the club was deleted", exc_info=True)

    async def _update_club(
        self,
        club_id: str,
        club_name: str | None,
        change: Callable[[ClubThreadDoc], None],
        *,
        create: bool = True,
        current: ClubThreadDoc | None = None,
    ) -> ClubThreadDoc | None:
        """Apply `change` under the document's etag (re-read and re-applied on a race); None
        when there is no document and `create` is False. `current`: a copy just written, tried
        first (saves a read when no one else changed it since)."""
        key = _club_key(club_id)
        for attempt in range(_ATTEMPTS):
            doc = current if attempt == 0 and current else await self._read_club(club_id)
            if doc is None:
                if not create:
                    return None
                fresh: ClubThreadDoc = {
                    "id": key,
                    "pk": key,
                    "clubId": club_id,
                    "topic": club_name or "Club",
                    "threadId": None,
                    "idempotencyToken": str(uuid.uuid4()),
                    "want": {},
                    "have": {},
                    "waiting": [],
                }
                change(fresh)
                try:
                    return cast(ClubThreadDoc, await self._store.create(SYSTEM, _untyped(fresh)))
                except DocumentExists:
                    continue
            etag = doc.get("_etag", "")
            change(doc)
            try:
                return cast(ClubThreadDoc, await self._store.replace(SYSTEM, _strip(doc), etag))
            except PreconditionFailed:
                continue
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def _converge(self, doc: ClubThreadDoc) -> None:
        """Make the ACS thread hold `want`: create it, add the missing, remove the departed.

        On a normal join this is one chat call (an add, or the create of a new club's thread).
        """
        club_id = doc["clubId"]
        want = {u: ChatParticipant(v[0], v[1]) for u, v in doc["want"].items()}
        added: dict[str, str] = {}
        removed: list[str] = []
        thread_id = doc["threadId"]
        try:
            if thread_id is None:
                first = list(want.items())[:MAX_PARTICIPANTS_PER_ADD]
                thread_id = await self._chat.create_thread(
                    doc["topic"],
                    [p for _, p in first],
                    idempotency_token=doc["idempotencyToken"],
                )
                added.update({u: p.communication_user_id for u, p in first})
            missing = [(u, p) for u, p in want.items() if u not in doc["have"] and u not in added]
            for start in range(0, len(missing), MAX_PARTICIPANTS_PER_ADD):
                batch = missing[start : start + MAX_PARTICIPANTS_PER_ADD]
                await self._chat.add_participants(thread_id, [p for _, p in batch])
                added.update({u: p.communication_user_id for u, p in batch})
            for user, acs_id in doc["have"].items():
                if user not in want:
                    await self._chat.remove_participant(thread_id, acs_id)
                    removed.append(user)
        except ChatThreadNotFound:
            # Deleted behind our back: start a new thread at the next change.
            log.warning("a club's chat thread is gone from ACS; it will be created again")
            await self._announce(await self._record_club(club_id, doc, reset=True))
            return
        except ChatThreadFull:
            log.warning("a club's chat thread is full in ACS; seats converge at the next change")
        except Exception:
            log.warning("club chat participants not converged; next change retries", exc_info=True)
        if added or removed or (thread_id and thread_id != doc["threadId"]):
            recorded = await self._record_club(
                club_id, doc, thread_id=thread_id, added=added, removed=removed
            )
        else:
            recorded = doc
        for user in added:
            await self._store.upsert(
                THREADS,
                _untyped(
                    self._thread_doc(user, f"club:{club_id}", thread_id, "club", doc["topic"])
                ),
            )
        await self._announce(recorded)

    async def _record_club(
        self,
        club_id: str,
        current: ClubThreadDoc,
        *,
        thread_id: str | None = None,
        added: dict[str, str] | None = None,
        removed: Sequence[str] = (),
        reset: bool = False,
    ) -> ClubThreadDoc | None:
        """Record what ACS now holds (`have`), re-reading on a concurrent change."""

        def record(doc: ClubThreadDoc) -> None:
            if reset:
                doc["threadId"] = None
                doc["have"] = {}
                doc["idempotencyToken"] = str(uuid.uuid4())
                return
            if thread_id and doc["threadId"] is None:
                doc["threadId"] = thread_id
            doc["have"].update(added or {})
            for user in removed:
                doc["have"].pop(user, None)

        return await self._update_club(
            club_id, None, record, create=False, current=copy.deepcopy(current)
        )

    async def _announce(self, doc: ClubThreadDoc | None) -> None:
        """Tell the clubs capability the club's thread (members see it as `chatThreadId`) when
        it changed since last told; a failure is retried at the next change."""
        if doc is None or self._club_thread_changed is None:
            return
        if doc.get("announced") == doc["threadId"]:
            return
        await self._club_thread_changed(doc["clubId"], doc["threadId"])
        told = doc["threadId"]

        def remember(current: ClubThreadDoc) -> None:
            current["announced"] = told

        await self._update_club(doc["clubId"], None, remember, create=False, current=doc)

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
        joining the meeting; the controller only lists it)."""
        for user in dict.fromkeys(user_ids):
            await self._store.upsert(
                THREADS,
                _untyped(
                    self._thread_doc(
                        user, f"meeting:{meeting_id}", thread_id, "meeting", subject, meeting_id
                    )
                ),
            )

    async def meeting_unlisted(self, meeting_id: str, user_ids: Iterable[str]) -> None:
        for user in dict.fromkeys(user_ids):
            await self._store.delete(THREADS, user, f"meeting:{meeting_id}")

    # --- erase (UserDataOwner) ----------------------------------------------------------------

    async def purge_user(self, user_id: str) -> None:
        """The user leaves every thread; their direct threads are deleted; their list is gone."""
        continuation: str | None = None
        docs: list[ThreadDoc] = []
        while True:
            page = await self._store.query(THREADS, user_id, limit=1000, continuation=continuation)
            docs += [cast(ThreadDoc, d) for d in page.items]
            continuation = page.continuation
            if continuation is None:
                break
        for doc in docs:
            if doc["kind"] == "direct" and doc["userId"]:
                await self.remove_direct_thread(user_id, doc["userId"])
            elif doc["kind"] == "club" and doc["clubId"]:
                await self.club_member_removed(doc["clubId"], user_id)
            await self._store.delete(THREADS, user_id, doc["id"])

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
