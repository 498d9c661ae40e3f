"""Wire models of the meetings capability: schedule, import, agenda and one meeting
(docs/meetings.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from switchboard.models import ApiModel, RequestModel, UserId

MAX_INVITEES = 100

Subject = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class MeetingCreate(RequestModel):
    subject: Subject
    start: AwareDatetime = Field(description="ISO 8601 with an offset.")
    end: AwareDatetime = Field(description="After start, at most 24 hours later.")
    invitees: list[UserId] = Field(
        default_factory=list,
        max_length=MAX_INVITEES,
        description="User ids of existing users (friends or not).",
    )


class MeetingImport(MeetingCreate):
    join_url: str = Field(
        min_length=1,
        max_length=2048,
        description="The Teams link: https://teams.microsoft.com/l/meetup-join/… or "
        "https://teams.microsoft.com/meet/<meeting id>?p=<passcode>.",
    )


class AgendaQuery(RequestModel):
    date: str | None = Field(
        None,
        pattern=r"^(\d{4}-\d{2}-\d{2})?$",
        description="YYYY-MM-DD; default (absent or empty): today in `tz`.",
    )
    tz: str | None = Field(
        None, max_length=64, description="IANA time zone; default (absent or empty): UTC."
    )


class Meeting(ApiModel):
    meeting_id: str
    subject: str
    start: datetime
    end: datetime
    join_url: str
    thread_id: str | None = Field(description="The Teams meeting chat's thread id, if known.")
    join_meeting_id: str | None = Field(description="Teams meeting ID, to join by id.")
    passcode: str | None
    organizer_id: str
    invitees: list[str]
    provider: Literal["graph", "local", "import"]


class MeetingList(ApiModel):
    items: list[Meeting]
