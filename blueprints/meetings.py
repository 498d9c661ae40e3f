"""Meetings (Teams): schedule, import from a Teams link, the caller's day, one meeting, cancel
(docs/meetings.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.http import Reply, blueprint, no_content, route
from switchboard.models.meetings import (
    AgendaQuery,
    Meeting,
    MeetingCreate,
    MeetingImport,
    MeetingList,
)
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

if TYPE_CHECKING:  # annotations only: the service loads when the runtime builds it
    from switchboard.services.meetings import MeetingView

bp = blueprint("meetings")


@route(
    bp,
    "POST",
    "meetings",
    summary="Schedule a Teams meeting (through Microsoft Graph) with the given invitees",
    body=MeetingCreate,
    response=Meeting,
    status=201,
    errors=(404, 503),
)
async def create_meeting(caller: Caller, body: MeetingCreate) -> MeetingView:
    return await get_runtime().meetings.schedule(
        caller, body.subject, body.start, body.end, body.invitees
    )


@route(
    bp,
    "POST",
    "meetings/import",
    summary="Register a meeting scheduled in Outlook or Teams, from its Teams join link",
    body=MeetingImport,
    response=Meeting,
    status=201,
    errors=(503,),
)
async def import_meeting(caller: Caller, body: MeetingImport) -> MeetingView:
    return await get_runtime().meetings.import_meeting(
        caller, body.join_url, body.subject, body.start, body.end, body.invitees
    )


@route(
    bp,
    "GET",
    "meetings",
    summary="The caller's meetings on a day (organizer or invitee), ordered by start",
    query=AgendaQuery,
    response=MeetingList,
)
async def list_meetings(caller: Caller, query: AgendaQuery) -> dict[str, list[MeetingView]]:
    return {"items": await get_runtime().meetings.agenda(caller, query.date, query.tz)}


@route(
    bp,
    "GET",
    "meetings/{meetingId}",
    summary="One meeting, for its organizer and invitees",
    response=Meeting,
    errors=(404,),
)
async def get_meeting(caller: Caller, meetingId: str) -> MeetingView:
    return await get_runtime().meetings.get(caller, meetingId)


@route(
    bp,
    "DELETE",
    "meetings/{meetingId}",
    summary="Cancel a meeting (organizer only); cancelled in Teams too",
    status=204,
    errors=(403, 404, 503),
)
async def delete_meeting(caller: Caller, meetingId: str) -> Reply:
    await get_runtime().meetings.delete(caller, meetingId)
    return no_content
