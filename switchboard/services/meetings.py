"""Meetings: Teams meetings scheduled through the meeting provider (Microsoft Graph, or the local
recorder) or imported from a Teams link, shared with the users invited to them (docs/meetings.md,
docs/architecture.md#storage-model).

Storage:
- `meetings/{meetingId}` (pk meetingId): the meeting — provider ids, join link, chat thread id,
  Teams meeting ID and passcode, organizer and invitees. The truth for reads and cancellation.
- `agenda/{userId}/{meetingId}` (pk userId): one entry per participant (organizer or invitee),
  a copy of the meeting with its start and end in UTC, so "what meetings do I have today?" is one
  query in the caller's own partition, with no second read.

Meetings are never edited, only created and cancelled; the one change to a meeting is an erased
invitee leaving it, which rewrites the meeting and every participant's copy.

Writes are ordered so that no failure leaves half a meeting: the provider's meeting first (its
`externalId` is our meetingId, so the provider's own retries never make two), then the meeting,
then the agenda entries; if a store write fails, what was written is removed and the provider's
meeting cancelled before the 503 goes out. Cancellation runs the other way round (provider,
agenda entries, meeting last), so a failed DELETE can be retried to the end.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NotRequired, TypedDict, cast
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from switchboard import errors
from switchboard.ports import Doc, DocumentStore, MeetingProvider, OnlineMeeting, PreconditionFailed
from switchboard.services.caller import Caller
from switchboard.services.hooks import MeetingObserver

log = logging.getLogger("switchboard.meetings")

MEETINGS = "meetings"
AGENDA = "agenda"
USERS = "users"
MAX_DURATION = timedelta(hours=24)
MAX_INVITEES = 100
# Agenda reads page through the caller's partition newest first; a page this size holds a
# typical user's future meetings and today's in one round trip.
AGENDA_PAGE = 100
_REPLACE_ATTEMPTS = 3

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
        observers: Sequence[MeetingObserver] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        # None: no way to schedule here (in Azure without Graph); imports still work.
        self._provider = provider
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
        """A new online meeting of the provider, stored with one agenda entry per participant.

        Operations: 1 users read_many, 1 provider create, 1 meeting create, 1 + N agenda upserts.
        """
        if self._provider is None:
            raise errors.MeetingsNotConfigured(
                "Scheduling meetings is not configured on this server (MEETINGS_ORGANIZER_ID and "
                "Microsoft Graph); import a meeting scheduled in Outlook or Teams instead."
            )
        start, end = _checked_times(start, end)
        guests = await self._checked_invitees(caller.user_id, invitees)
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
        )
        try:
            await self._write(doc)
        except BaseException:
            await self._cancel_at_provider(doc, best_effort=True)
            raise
        view = _view(doc)
        await self._tell_created(view)
        return view

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
        guests = await self._checked_invitees(caller.user_id, invitees)
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
        )
        await self._write(doc)
        view = _view(doc)
        await self._tell_created(view)
        return view

    async def _checked_invitees(self, organizer_id: str, invitees: Sequence[str]) -> list[str]:
        """Invitees once each, the organizer left out; every one an existing user (else 400)."""
        guests = [u for u in dict.fromkeys(invitees) if u != organizer_id]
        if len(guests) > MAX_INVITEES:
            raise errors.InvalidInput(f"invitees: at most {MAX_INVITEES} users", field="invitees")
        if not guests:
            return guests
        found = await self._store.read_many(USERS, [(u, u) for u in guests])
        known = {doc["id"] for doc in found}
        unknown = [u for u in guests if u not in known]
        if unknown:
            raise errors.UnknownUsers(
                "invitees: no such user(s): " + ", ".join(unknown[:20]), field="invitees"
            )
        return guests

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
        }

    async def _write(self, doc: MeetingDoc) -> None:
        """The meeting, then every participant's agenda entry; all of it or nothing."""
        await self._store.create(MEETINGS, _untyped(doc))
        try:
            await asyncio.gather(
                *(
                    self._store.upsert(AGENDA, _untyped(_agenda_entry(doc, user)))
                    for user in _participants(doc)
                )
            )
        except BaseException:
            await self._remove_records(doc, best_effort=True)
            raise

    # --- read ----------------------------------------------------------------------------------

    async def require_participant(self, user_id: str, meeting_id: str) -> MeetingView:
        """The meeting if `user_id` organizes it or is invited; NotFound otherwise (1 read)."""
        doc = await self._read_meeting(meeting_id)
        if doc is None or user_id not in _participants(doc):
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
        """Cancel a meeting: organizer only (invitees 403, others 404)."""
        doc = await self._read_meeting(meeting_id)
        if doc is None or caller.user_id not in _participants(doc):
            raise errors.NotFound("No such meeting.")
        if doc["organizerId"] != caller.user_id:
            raise errors.Forbidden("Only the organizer can cancel this meeting.")
        await self._cancel(doc)

    async def _cancel(self, doc: MeetingDoc) -> None:
        await self._cancel_at_provider(doc, best_effort=False)
        await self._remove_records(doc, best_effort=False)
        await self._tell_deleted(doc["meetingId"], _participants(doc))

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

    async def _remove_records(self, doc: MeetingDoc, *, best_effort: bool) -> None:
        """Every agenda entry, then the meeting (last: it is what a retry finds)."""
        results = await asyncio.gather(
            *(self._store.delete(AGENDA, u, doc["meetingId"]) for u in _participants(doc)),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        try:
            if failures:
                raise failures[0]
            await self._store.delete(MEETINGS, doc["meetingId"], doc["meetingId"])
        except Exception:
            if not best_effort:
                raise
            log.warning("could not remove the records of a failed meeting write", exc_info=True)

    async def purge_user(self, user_id: str) -> None:
        """DELETE /api/me: meetings the user organized are cancelled as DELETE does; they leave
        the meetings they were invited to; their agenda is removed. Idempotent."""
        entries: list[Doc] = []
        continuation: str | None = None
        while True:
            page = await self._store.query(AGENDA, user_id, limit=1000, continuation=continuation)
            entries += page.items
            continuation = page.continuation
            if continuation is None:
                break
        for entry in entries:
            meeting_id = entry["meetingId"]
            doc = await self._read_meeting(meeting_id)
            if doc is not None and doc["organizerId"] == user_id:
                await self._cancel(doc)
            elif doc is not None and user_id in doc["invitees"]:
                await self._leave(doc, user_id)
            await self._store.delete(AGENDA, user_id, meeting_id)

    async def _leave(self, doc: MeetingDoc, user_id: str) -> None:
        """Remove an invitee from the meeting and from every other participant's copy."""
        current: MeetingDoc | None = doc
        for _ in range(_REPLACE_ATTEMPTS):
            if current is None or user_id not in current["invitees"]:
                return
            updated: MeetingDoc = {
                **current,
                "invitees": [u for u in current["invitees"] if u != user_id],
            }
            try:
                saved = await self._store.replace(
                    MEETINGS, _strip_system(updated), current.get("_etag", "")
                )
                break
            except PreconditionFailed:
                current = await self._read_meeting(doc["meetingId"])
        else:
            raise errors.DependencyUnavailable("store", retry_after=1)
        meeting = cast(MeetingDoc, saved)
        others = _participants(meeting)
        copies = await self._store.read_many(AGENDA, [(u, meeting["meetingId"]) for u in others])
        for copy in copies:
            fresh = _agenda_entry(meeting, copy["userId"])
            try:
                await self._store.replace(AGENDA, _untyped(fresh), copy["_etag"])
            except Exception:
                # A participant's copy changed or went meanwhile (their own erase): the meeting
                # itself is right, and reads of one meeting come from it.
                log.warning("could not refresh a participant's agenda copy", exc_info=True)

    # --- observers -----------------------------------------------------------------------------

    async def _tell_created(self, view: MeetingView) -> None:
        for observer in self._observers:
            try:
                await observer.meeting_created(
                    view.meeting_id, view.subject, view.thread_id, view.participant_ids
                )
            except Exception:
                log.warning("a meeting observer failed on create", exc_info=True)

    async def _tell_deleted(self, meeting_id: str, participants: list[str]) -> None:
        for observer in self._observers:
            try:
                await observer.meeting_deleted(meeting_id, participants)
            except Exception:
                log.warning("a meeting observer failed on delete", exc_info=True)

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


def _untyped(doc: MeetingDoc | AgendaDoc) -> Doc:
    return cast(Doc, doc)


def _strip_system(doc: MeetingDoc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}
