"""Integrity of meetings (docs/reactions.md "Friends, chat and meetings").

- no agenda entry without its meeting, and no entry of someone the meeting does not name; every
  participant of a live meeting has their entry, as the meeting says;
- no cancelled meeting is left (the reconciler removes it once its copies are gone);
- nothing names a user without a profile (or of another generation than invited);
- every participant of a live meeting lists its chat, and no one else does.
"""

from __future__ import annotations

from typing import Any

from switchboard.services.meetings import _agenda_entry, _participants
from tests.integrity._scan import all_docs

_SYSTEM = ("_etag", "_ts")


async def check(store: Any, chat_provider: Any) -> list[str]:
    problems: list[str] = []
    meetings = {d["id"]: d for d in await all_docs(store, "meetings")}
    profiles = {d["id"]: d for d in await all_docs(store, "users") if d["pk"] == d["id"]}
    agenda = {(d["pk"], d["id"]): d for d in await all_docs(store, "agenda")}
    listings = {
        (d["pk"], d["meetingId"]): d
        for d in await all_docs(store, "threads")
        if d["kind"] == "meeting"
    }

    for (user, meeting_id), entry in agenda.items():
        meeting = meetings.get(meeting_id)
        if meeting is None or meeting.get("cancelled"):
            problems.append(f"meetings: {user} has an entry of a meeting that is gone")
        elif user not in _participants(meeting):
            problems.append(f"meetings: {user} has an entry of a meeting that does not name them")
        elif {k: v for k, v in entry.items() if k not in _SYSTEM} != _agenda_entry(
            meeting,  # type: ignore[arg-type]
            user,
        ):
            problems.append(f"meetings: {user}'s entry differs from the meeting")
    for user, meeting_id in listings:
        meeting = meetings.get(meeting_id)
        if meeting is None or meeting.get("cancelled") or user not in _participants(meeting):
            problems.append(f"meetings: {user} lists the chat of a meeting not theirs or gone")
    for meeting_id, meeting in meetings.items():
        if meeting.get("cancelled"):
            problems.append(f"meetings: a cancelled meeting {meeting_id} is left")
            continue
        for user in _participants(meeting):
            profile = profiles.get(user)
            recorded = meeting.get("generations", {}).get(user)
            if profile is None or (recorded and recorded != profile.get("generation", "")):
                problems.append(f"meetings: {meeting_id} names {user}, erased or re-registered")
            if (user, meeting_id) not in agenda:
                problems.append(f"meetings: {user} has no entry of {meeting_id}")
            if (user, meeting_id) not in listings:
                problems.append(f"meetings: {user} does not list the chat of {meeting_id}")
    return problems
