"""Wire models of the friends capability: lists, requests, call-info and invite codes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, Field

from switchboard.models import ApiModel, Page, PageQuery

FriendStatus = Literal["accepted", "incoming", "outgoing"]


class FriendsQuery(PageQuery):
    status: FriendStatus = Field("accepted", description="One status per list.")
    page_size: int = Field(100, ge=1, le=500, description="Items per page (default 100).")


class Friend(ApiModel):
    user_id: str
    display_name: str
    communication_user_id: str | None = Field(
        description="Accepted friends only, once they have an ACS identity."
    )
    status: FriendStatus
    since: datetime


class FriendList(Page[Friend]):
    pass


class Relation(ApiModel):
    user_id: str
    status: Literal["accepted", "outgoing"]


class PstnRoute(ApiModel):
    # The service's view names them from_number/to_number (`from` is a Python keyword).
    from_: str = Field(
        alias="from",
        validation_alias=AliasChoices("from", "from_", "from_number"),
        description="The app's ACS number (PSTN_CALLER_ID).",
    )
    to: str = Field(
        validation_alias=AliasChoices("to", "to_number"),
        description="The friend's verified phone number, E.164.",
    )


class CallInfo(ApiModel):
    communication_user_id: str | None
    pstn: PstnRoute | None


class InviteCode(ApiModel):
    code: str = Field(description="One-time, unguessable; share it out of band (QR, message).")
    expires_at: datetime


class RedeemedInvite(ApiModel):
    user_id: str
    display_name: str
    status: Literal["accepted"] = "accepted"
