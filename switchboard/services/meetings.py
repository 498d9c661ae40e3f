"""Meetings: Teams meetings scheduled through the meeting provider (Microsoft Graph, or the local
recorder) or imported from a Teams link, shared with the users invited to them (docs/meetings.md,
docs/architecture.md#storage-model).

Storage:
- `meetings/{meetingId}` (pk meetingId): the meeting — provider ids, join link, chat thread id,
  Teams meeting ID and passcode, organizer and invitees, and the profile generation each
  participant had when invited. **The truth**: the meeting document is the invitation.
- `agenda/{userId}/{meetingId}` (pk userId): one entry per participant (organizer or invitee),
  a copy of the meeting with its start and end in UTC, so "what meetings do I have today?" is one
  query in the caller's own partition, with no second read.
- the meeting chat's listing in each participant's thread list (the chat capability's).

The copies are kept by the `meeting` reconciler (`reconcile_meeting`, docs/reactions.md): every
participant's agenda entry and listing as the meeting says; a participant whose profile is gone
(or is of another generation: erased, perhaps signed up again) leaves the meeting, and an erased
organizer's meeting is cancelled; a cancelled meeting's copies go, then the meeting itself.
Requests write the truth and the caller's own copy, inside `work.following(("meeting", id))`:
scheduling is O(1) in store operations whatever the number of invitees (the fan-out to up to
100 invitees runs in the reconciler, seconds later).

Meetings are never edited, only created and cancelled. The provider's meeting is made first (its
`externalId` is our meetingId, so the provider's own retries never make two), then the meeting;
if that write fails the provider's meeting is cancelled before the 503 goes out. Cancellation
cancels at the provider, then marks the meeting cancelled (the reconciler removes the rest), so
a failed DELETE changes nothing and can be retried.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NotRequired, Protocol, TypedDict, cast
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from switchboard import errors
from switchboard.ports import Doc, DocumentStore, MeetingProvider, OnlineMeeting
from switchboard.services.caller import Caller
from switchboard.services.documents import KEEP, _Keep, modify
from switchboard.services.hooks import MeetingObserver, ProfileInfo, Profiles
from switchboard.services.reactions import Work

log = logging.getLogger("switchboard.meetings")


class Blocks(Protocol):
    """The friends capability's view of blocks, as meetings needs it."""

    async def blockers_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Which of `others` have blocked `user_id`."""
        ...


MEETINGS = "meetings"
AGENDA = "agenda"
MEETING = "meeting"  # the work kind: key = the meeting id
MAX_DURATION = timedelta(hours=24)
MAX_INVITEES = 100
# Agenda reads page through the caller's partition newest first; a page this size holds a
# typical user's future meetings and today's in one round trip.
AGENDA_PAGE = 100
_FAN_OUT = 50  # work items recorded at once while a purge fans out

TEAMS_HOST = "teams.microsoft.com"
# A Teams chat thread id as it appears (URL-encoded) in a classic meetup-join link.
_THREAD_ID = re.compile(r"19:[A-Za-z0-9_.=-]{1,200}@thread\.(?:v2|tacv2|skype)")
_SHORT_PATH = re.compile(r"/meet/(\d{6,20})/?")
_PASSCODE = re.compile(r"[A-Za-z0-9]{1,32}")
# Printable ASCII only: a link is shown to other users and opened by their clients.
_URL_CHARS = re.compile(r"[\x21-\x7e]{1,2048}")
_TZ_NAME = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")


class MeetingDoc(TypedDict):
    """`meetings/{meetingId}`: the meeting itself."""

    id: str
    pk: str
    meetingId: str
    subject: str
    start: str  # UTC, "YYYY-MM-DDTHH:MM:SSZ": sorts as it reads
    end: str
    joinUrl: str
    threadId: str | None
    joinMeetingId: str | None
    passcode: str | None
    organizerId: str
    invitees: list[str]
    provider: str  # "graph" | "local" | "import"
    providerMeetingId: str | None  # Graph's onlineMeeting id; None for imported meetings
    createdAt: str
    # userId -> the profile generation the participant had when invited (absent: a meeting
    # from before generations; then only a missing profile counts as gone).
    generations: NotRequired[dict[str, str]]
    # Cancelled (DELETE, or its organizer erased): the reconciler removes every copy, then this.
    cancelled: NotRequired[bool]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class AgendaDoc(TypedDict):
    """`agenda/{userId}/{meetingId}`: a participant's copy of a meeting, ordered by start."""

    id: str
    pk: str
    userId: str
    role: str  # "organizer" | "invitee"
    meetingId: str
    subject: str
    start: str
    end: str
    joinUrl: str
    threadId: str | None
    joinMeetingId: str | None
    passcode: str | None
    organizerId: str
    invitees: list[str]
    provider: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


@dataclass(frozen=True, slots=True)
class MeetingView:
    """A meeting as the API shows it to a participant."""

    meeting_id: str
    subject: str
    start: datetime
    end: datetime
    join_url: str
    thread_id: str | None
    join_meeting_id: str | None
    passcode: str | None
    organizer_id: str
    invitees: list[str]
    provider: str

    @property
    def participant_ids(self) -> list[str]:
        return [self.organizer_id, *self.invitees]


@dataclass(frozen=True, slots=True)
class TeamsLink:
    """What a Teams join link tells: the chat thread (classic form) or the meeting ID (short)."""

    join_url: str
    thread_id: str | None
    join_meeting_id: str | None
    passcode: str | None


class MeetingsService:
    """Schedules, imports, lists, shows and cancels meetings; erases a user's part in them."""

    def __init__(
        self,
        store: DocumentStore,
        provider: MeetingProvider | None,
        *,
        profiles: Profiles,
        work: Work,
        blocks: Blocks | None = None,
        observers: Sequence[MeetingObserver] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        # None: no way to schedule here (in Azure without Graph); imports still work.
        self._provider = provider
        self._profiles = profiles
        self._work = work
        # Who blocked whom (the friends capability's API); None in tests of meetings alone.
        self._blocks = blocks
        # Told by the reconciler (chat lists the meeting's chat): a failure is retried.
        self._observers = tuple(observers)
        self._clock = clock
        self._new_id = new_id

    # --- schedule and import -----------------------------------------------------------------

    async def schedule(
        self,
        caller: Caller,
        subject: str,
        start: datetime,
        end: datetime,
        invitees: Sequence[str],
    ) -> MeetingView:
        """A new online meeting of the provider; the organizer's agenda entry at once, the
        invitees' by the `meeting` reconciler.

        Operations: 1 `Profiles.get_many`, 1 provider create, 1 meeting create, 1 agenda upsert
        (the organizer's), the `meeting` work before and after (2 upserts): 5 store operations
        whatever the number of invitees.
        """
        if self._provider is None:
            raise errors.MeetingsNotConfigured(
                "Scheduling meetings is not configured on this server (MEETINGS_ORGANIZER_ID and "
                "Microsoft Graph); import a meeting scheduled in Outlook or Teams instead."
            )
        start, end = _checked_times(start, end)
        guests, generations = await self._checked_invitees(caller.user_id, invitees)
        meeting_id = self._new_id()
        online = await self._provider.create_meeting(
            external_id=meeting_id, subject=subject, start=start, end=end
        )
        doc = self._meeting_doc(
            meeting_id,
            caller.user_id,
            subject,
            start,
            end,
            guests,
            provider=self._provider.name,
            link=_online_link(online),
            provider_meeting_id=online.provider_meeting_id,
            generations=generations,
        )
        try:
            await self._write(doc)
        except BaseException:
            await self._cancel_at_provider(doc, best_effort=True)
            raise
        return _view(doc)

    async def import_meeting(
        self,
        caller: Caller,
        join_url: str,
        subject: str,
        start: datetime,
        end: datetime,
        invitees: Sequence[str],
    ) -> MeetingView:
        """A meeting scheduled in Outlook or Teams, registered from its join link.

        The short link's meeting ID is looked up at the provider to learn the chat thread id
        (found only for meetings of the configured organizer); otherwise `threadId` stays null.
        """
        link = parse_teams_link(join_url)
        start, end = _checked_times(start, end)
        guests, generations = await self._checked_invitees(caller.user_id, invitees)
        if link.thread_id is None and link.join_meeting_id and self._provider is not None:
            found = await self._provider.find_by_join_meeting_id(link.join_meeting_id)
            if found is not None:
                link = TeamsLink(
                    link.join_url, found.thread_id, link.join_meeting_id, link.passcode
                )
        doc = self._meeting_doc(
            self._new_id(),
            caller.user_id,
            subject,
            start,
            end,
            guests,
            provider="import",
            link=link,
            provider_meeting_id=None,
            generations=generations,
        )
        await self._write(doc)
        return _view(doc)

    async def _checked_invitees(
        self, organizer_id: str, invitees: Sequence[str]
    ) -> tuple[list[str], dict[str, str]]:
        """Invitees once each, the organizer left out; every one an existing user who has not
        blocked the organizer (else 400). Also each participant's profile generation, recorded
        with the meeting. Two batched reads, together (profiles, and the pairs' blocks)."""
        guests = [u for u in dict.fromkeys(invitees) if u != organizer_id]
        if len(guests) > MAX_INVITEES:
            raise errors.InvalidInput(f"invitees: at most {MAX_INVITEES} users", field="invitees")
        if self._blocks is None:
            found = await self._profiles.get_many([organizer_id, *guests])
            blocking: set[str] = set()
        else:
            found, blocking = await asyncio.gather(
                self._profiles.get_many([organizer_id, *guests]),
                self._blocks.blockers_among(organizer_id, guests),
            )
        # A user who blocked the organizer gets the answer an unknown id gets, so the organizer
        # learns nothing of the block (docs/security.md).
        unknown = [u for u in guests if u not in found or u in blocking]
        if unknown:
            raise errors.UnknownUsers(
                "invitees: no such user(s): " + ", ".join(unknown[:20]), field="invitees"
            )
        return guests, {u: p.generation for u, p in found.items()}

    def _meeting_doc(
        self,
        meeting_id: str,
        organizer_id: str,
        subject: str,
        start: datetime,
        end: datetime,
        invitees: list[str],
        *,
        provider: str,
        link: TeamsLink,
        provider_meeting_id: str | None,
        generations: dict[str, str],
    ) -> MeetingDoc:
        return {
            "id": meeting_id,
            "pk": meeting_id,
            "meetingId": meeting_id,
            "subject": subject,
            "start": _stamp(start),
            "end": _stamp(end),
            "joinUrl": link.join_url,
            "threadId": link.thread_id,
            "joinMeetingId": link.join_meeting_id,
            "passcode": link.passcode,
            "organizerId": organizer_id,
            "invitees": invitees,
            "provider": provider,
            "providerMeetingId": provider_meeting_id,
            "createdAt": self._clock().isoformat(),
            "generations": generations,
        }

    async def _write(self, doc: MeetingDoc) -> None:
        """The meeting and its organizer's agenda entry, with the `meeting` work around them
        (the reconciler writes the invitees' entries and everyone's chat listing). If a write
        fails the meeting is removed again (best effort; the reconciler removes an entry whose
        meeting is gone only through a purge, so the entry goes first)."""
        organizer = doc["organizerId"]
        async with self._work.following((MEETING, doc["meetingId"])):
            await self._store.create(MEETINGS, _untyped(doc))
            try:
                await self._store.upsert(AGENDA, _untyped(_agenda_entry(doc, organizer)))
            except BaseException:
                try:
                    await self._store.delete(MEETINGS, doc["meetingId"], doc["meetingId"])
                except Exception:
                    # The reconciler cancels nothing here (the organizer is alive): the meeting
                    # stays and its copies follow it; the caller saw a 503 and may cancel it.
                    log.warning("could not remove a meeting after a failed write", exc_info=True)
                raise

    # --- read ----------------------------------------------------------------------------------

    async def require_participant(self, user_id: str, meeting_id: str) -> MeetingView:
        """The meeting if `user_id` organizes it or is invited; NotFound otherwise (1 read)."""
        doc = await self._read_meeting(meeting_id)
        if doc is None or doc.get("cancelled") or user_id not in _participants(doc):
            raise errors.NotFound("No such meeting.")
        return _view(doc)

    async def get(self, caller: Caller, meeting_id: str) -> MeetingView:
        return await self.require_participant(caller.user_id, meeting_id)

    async def agenda(self, caller: Caller, day: str | None, tz: str | None) -> list[MeetingView]:
        """The caller's meetings overlapping that day in that time zone, by start.

        One bounded range query over the caller's agenda partition, by start: the meetings
        starting from a maximum meeting length before the day (an earlier one cannot reach into
        it) to the day's end, read from the store's index whatever lies outside that range.
        """
        zone = _zone(tz)
        if not day:
            wanted = self._clock().astimezone(zone).date()
        else:
            try:
                wanted = date.fromisoformat(day)
            except ValueError:
                raise errors.InvalidInput("date: not a calendar date", field="date") from None
        try:
            low = datetime.combine(wanted, time(), zone).astimezone(UTC)
            high = datetime.combine(wanted + timedelta(days=1), time(), zone).astimezone(UTC)
            earliest = _stamp(low - MAX_DURATION)
        except OverflowError:  # a day at the calendar's ends: its bounds leave datetime's range
            raise errors.InvalidInput("date: out of range", field="date") from None
        low_s, high_s = _stamp(low), _stamp(high)
        found: list[MeetingView] = []
        continuation: str | None = None
        while True:
            page = await self._store.query(
                AGENDA,
                caller.user_id,
                order_by="start",
                start_at=earliest,
                end_before=high_s,
                limit=AGENDA_PAGE,
                continuation=continuation,
            )
            found += [_view(doc) for doc in page.items if doc["end"] > low_s]
            continuation = page.continuation
            if continuation is None:
                return sorted(found, key=lambda v: (v.start, v.meeting_id))

    # --- cancel and erase ----------------------------------------------------------------------

    async def delete(self, caller: Caller, meeting_id: str) -> None:
        """Cancel a meeting: organizer only (invitees 403, others 404).

        Cancelled at the provider first (a failure is a 503 that changed nothing), then marked
        cancelled and the organizer's own entry removed; the reconciler removes the rest.
        """
        doc = await self._read_meeting(meeting_id)
        if doc is None or doc.get("cancelled") or caller.user_id not in _participants(doc):
            raise errors.NotFound("No such meeting.")
        if doc["organizerId"] != caller.user_id:
            raise errors.Forbidden("Only the organizer can cancel this meeting.")
        await self._cancel_at_provider(doc, best_effort=False)
        async with self._work.following((MEETING, meeting_id)):
            await modify(self._store, MEETINGS, meeting_id, meeting_id, _mark_cancelled)
            await self._store.delete(AGENDA, caller.user_id, meeting_id)

    async def _cancel_at_provider(self, doc: MeetingDoc, *, best_effort: bool) -> None:
        provider_id = doc.get("providerMeetingId")
        if provider_id is None:
            return  # imported: the meeting belongs to its organizer in Teams, not to us
        if self._provider is None or self._provider.name != doc["provider"]:
            log.warning(
                "a %s meeting is cancelled while that provider is not configured; "
                "only its records are removed",
                doc["provider"],
            )
            return
        try:
            await self._provider.delete_meeting(provider_id)
        except Exception:
            if not best_effort:
                raise
            log.warning("could not cancel a provider meeting left by a failed write", exc_info=True)

    # --- the meeting reconciler ---------------------------------------------------------------

    async def reconcile_meeting(self, meeting_id: str) -> None:
        """The `meeting` reconciler: every copy of one meeting as the meeting says.

        - gone (no document): nothing is known of its copies; nothing to do (a purge removes
          its erased participants' own entries);
        - cancelled: every participant's agenda entry and chat listing removed, then the meeting;
        - live: a participant whose profile is gone or of another generation leaves it (their
          entry and listing first, then the meeting without them); an erased organizer's
          meeting is cancelled (at the provider too); every other participant's entry and
          listing written where missing or different.
        Store operations: 1 read, 1 `Profiles.get_many`, 1 ReadMany of the entries, a write per
        differing entry (at most 101), and the chat listings alike.
        """
        doc = await self._read_meeting(meeting_id)
        if doc is None:
            return
        if not doc.get("cancelled"):
            participants = _participants(doc)
            profiles = await self._profiles.get_many(participants)
            gone = [u for u in participants if _gone(doc, u, profiles)]
            if doc["organizerId"] in gone:
                await self._cancel_at_provider(doc, best_effort=False)
                saved = await modify(self._store, MEETINGS, meeting_id, meeting_id, _mark_cancelled)
                if saved is None:
                    return
                doc = cast(MeetingDoc, saved)
            elif gone:
                await self._remove_copies(meeting_id, gone)

                def leave(current: Doc | None) -> Doc | _Keep | None:
                    if current is None:
                        return KEEP
                    staying = [u for u in current["invitees"] if u not in gone]
                    if staying == current["invitees"]:
                        return KEEP
                    generations = {
                        u: g for u, g in current.get("generations", {}).items() if u not in gone
                    }
                    kept = {k: v for k, v in current.items() if not k.startswith("_")}
                    return {**kept, "invitees": staying, "generations": generations}

                saved = await modify(self._store, MEETINGS, meeting_id, meeting_id, leave)
                if saved is None:
                    return
                doc = cast(MeetingDoc, saved)
        if doc.get("cancelled"):
            await self._remove_copies(meeting_id, _participants(doc))

            def drop(current: Doc | None) -> Doc | _Keep | None:
                return None if current is not None and current.get("cancelled") else KEEP

            await modify(self._store, MEETINGS, meeting_id, meeting_id, drop)
            return
        await self._write_copies(doc)

    async def _write_copies(self, doc: MeetingDoc) -> None:
        participants = _participants(doc)
        have = {
            d["pk"]: d
            for d in await self._store.read_many(
                AGENDA, [(u, doc["meetingId"]) for u in participants]
            )
        }
        writes = []
        for user in participants:
            entry = _agenda_entry(doc, user)
            current = have.get(user)
            if current is not None and _strip_system(cast(Any, current)) == entry:
                continue
            writes.append(self._store.upsert(AGENDA, _untyped(entry)))
        await asyncio.gather(*writes)
        for observer in self._observers:
            await observer.meeting_created(
                doc["meetingId"], doc["subject"], doc["threadId"], participants
            )

    async def _remove_copies(self, meeting_id: str, users: Sequence[str]) -> None:
        await asyncio.gather(*(self._store.delete(AGENDA, u, meeting_id) for u in users))
        for observer in self._observers:
            await observer.meeting_deleted(meeting_id, list(users))

    # --- erase ----------------------------------------------------------------------------------

    async def purge_user(self, user_id: str, *, later: bool = False) -> None:
        """An erased user's part in meetings (the `erasure` reconciler calls this).

        Fans out, page by page: each of their agenda entries records its meeting's `meeting`
        work (that reconciler, finding their profile gone, cancels what they organized and
        takes them out of what they were invited to, everywhere), then the entry goes.
        Idempotent.
        `later`: the work is due after the grace period, for a caller that deletes the profile
        only after this returns.
        """
        record = self._work.before if later else self._work.now
        continuation: str | None = None
        while True:
            page = await self._store.query(AGENDA, user_id, limit=1000, continuation=continuation)
            ids = [str(entry["meetingId"]) for entry in page.items]
            for start in range(0, len(ids), _FAN_OUT):
                chunk = ids[start : start + _FAN_OUT]
                await asyncio.gather(*(record(MEETING, m) for m in chunk))
                await asyncio.gather(*(self._store.delete(AGENDA, user_id, m) for m in chunk))
            continuation = page.continuation
            if continuation is None:
                break

    async def _read_meeting(self, meeting_id: str) -> MeetingDoc | None:
        doc = await self._store.read(MEETINGS, meeting_id, meeting_id)
        return None if doc is None else cast(MeetingDoc, doc)


def parse_teams_link(url: str) -> TeamsLink:
    """A Teams join link, either form, or InvalidJoinUrl.

    - classic: `https://teams.microsoft.com/l/meetup-join/<URL-encoded thread id>/…`
    - short: `https://teams.microsoft.com/meet/<meeting id>?p=<passcode>`
    Anything else (http, another host, a port or user info, another path, `javascript:`) is
    refused: the link is handed to other users' clients to open.
    """
    bad = errors.InvalidJoinUrl(
        "joinUrl: not a Teams meeting link (https://teams.microsoft.com/l/meetup-join/… or "
        "https://teams.microsoft.com/meet/<id>?p=<passcode>)",
        field="joinUrl",
    )
    # No backslash or fragment either: a Teams link has neither, and lenient or naive parsers
    # read them differently (a backslash as a slash, `#@evil.example` as a host).
    if not _URL_CHARS.fullmatch(url) or "\\" in url or "#" in url:
        raise bad
    try:
        parts = urlsplit(url)
    except ValueError:
        raise bad from None
    if parts.scheme != "https" or parts.netloc.lower() != TEAMS_HOST:
        raise bad
    if parts.path.startswith("/l/meetup-join/"):
        thread = unquote(parts.path.removeprefix("/l/meetup-join/").split("/", 1)[0])
        if not _THREAD_ID.fullmatch(thread):
            raise bad
        return TeamsLink(url, thread, None, None)
    short = _SHORT_PATH.fullmatch(parts.path)
    if short is None:
        raise bad
    try:
        query = parse_qs(parts.query, strict_parsing=bool(parts.query))
    except ValueError:
        raise bad from None
    passcodes = query.get("p", [])
    if len(passcodes) > 1 or (passcodes and not _PASSCODE.fullmatch(passcodes[0])):
        raise bad
    return TeamsLink(url, None, short.group(1), passcodes[0] if passcodes else None)


def _checked_times(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Both in UTC to the second; end after start and at most 24 h later (else 400)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise errors.InvalidInput("start: give times with an offset", field="start")
    try:
        start = start.astimezone(UTC).replace(microsecond=0)
        end = end.astimezone(UTC).replace(microsecond=0)
    except OverflowError:  # in UTC it would be year 0 or year 10000
        raise errors.InvalidInput("start: out of range", field="start") from None
    if end <= start:
        raise errors.InvalidInput("end: must be after start", field="end")
    if end - start > MAX_DURATION:
        raise errors.InvalidInput("end: a meeting lasts at most 24 hours", field="end")
    if start.year < 2000 or end.year > 9000:
        raise errors.InvalidInput("start: out of range", field="start")
    return start, end


def _zone(tz: str | None) -> ZoneInfo:
    name = tz or "UTC"
    if not _TZ_NAME.fullmatch(name):
        raise errors.InvalidInput("tz: not an IANA time zone", field="tz")
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise errors.InvalidInput("tz: not an IANA time zone", field="tz") from None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _participants(doc: Mapping[str, Any]) -> list[str]:
    return [doc["organizerId"], *doc["invitees"]]


def _agenda_entry(doc: MeetingDoc, user_id: str) -> AgendaDoc:
    return {
        "id": doc["meetingId"],
        "pk": user_id,
        "userId": user_id,
        "role": "organizer" if user_id == doc["organizerId"] else "invitee",
        "meetingId": doc["meetingId"],
        "subject": doc["subject"],
        "start": doc["start"],
        "end": doc["end"],
        "joinUrl": doc["joinUrl"],
        "threadId": doc["threadId"],
        "joinMeetingId": doc["joinMeetingId"],
        "passcode": doc["passcode"],
        "organizerId": doc["organizerId"],
        "invitees": list(doc["invitees"]),
        "provider": doc["provider"],
    }


def _view(doc: Mapping[str, Any]) -> MeetingView:
    return MeetingView(
        meeting_id=doc["meetingId"],
        subject=doc["subject"],
        start=_parse_stamp(doc["start"]),
        end=_parse_stamp(doc["end"]),
        join_url=doc["joinUrl"],
        thread_id=doc["threadId"],
        join_meeting_id=doc["joinMeetingId"],
        passcode=doc["passcode"],
        organizer_id=doc["organizerId"],
        invitees=list(doc["invitees"]),
        provider=doc["provider"],
    )


def _online_link(meeting: OnlineMeeting) -> TeamsLink:
    return TeamsLink(meeting.join_url, meeting.thread_id, meeting.join_meeting_id, meeting.passcode)


def _gone(doc: Mapping[str, Any], user: str, profiles: Mapping[str, ProfileInfo]) -> bool:
    """Whether `user`, named by the meeting, is erased (no profile) or is a later user of that
    id (another generation than the one invited)."""
    profile = profiles.get(user)
    if profile is None:
        return True
    recorded = doc.get("generations", {}).get(user)
    return bool(recorded) and recorded != profile.generation


def _mark_cancelled(current: Doc | None) -> Doc | _Keep | None:
    if current is None or current.get("cancelled"):
        return KEEP
    return {**{k: v for k, v in current.items() if not k.startswith("_")}, "cancelled": True}


def _untyped(doc: MeetingDoc | AgendaDoc) -> Doc:
    return cast(Doc, doc)


def _strip_system(doc: MeetingDoc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}
