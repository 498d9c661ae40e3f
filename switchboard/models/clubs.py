"""Wire models of the clubs capability: clubs, memberships, members and the active group call."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from switchboard.models import ApiModel, Page, PageQuery, RequestModel

# What the ACS Calling SDK uses for a group call's id: a UUID (stored lowercase, so two spellings
# of one id are one call).
GroupCallId = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
    AfterValidator(str.lower),
]
ClubName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
Visibility = Literal["open", "invite"]
Role = Literal["owner", "member"]
Standing = Literal["member", "invited"]


class ClubCreate(RequestModel):
    name: ClubName
    visibility: Visibility = Field(
        description="open: anyone signed in may join; invite: members by the owner's "
        "invitation only."
    )


class ActiveCall(ApiModel):
    group_call_id: str = Field(description="The ACS group call id members join with.")
    started_by: str | None = Field(
        description="The member who registered it; null once that user is erased."
    )
    started_at: datetime


class Club(ApiModel):
    club_id: str
    name: str
    owner_id: str
    visibility: Visibility
    member_count: int
    role: Role | None = Field(None, description="The caller's role; null for a non-member.")
    active_call: ActiveCall | None = Field(None, description="Members only; null otherwise.")
    chat_thread_id: str | None = Field(
        None, description="The club's ACS chat thread, members only; null until chat exists."
    )


class ClubList(ApiModel):
    items: list[Club]


class Membership(ApiModel):
    club_id: str
    user_id: str
    role: Role
    joined_at: datetime


class Member(ApiModel):
    user_id: str
    display_name: str | None
    communication_user_id: str | None = Field(
        description="Only for the caller and the caller's accepted friends; null for others."
    )
    role: Role
    joined_at: datetime = Field(description="For an invitee: when they were invited.")
    status: Standing = Field(
        "member", description="invited: a pending invitation (listed to the owner only)."
    )


class Invitation(ApiModel):
    """The answer to the owner's PUT of a member: the user is invited (or already a member)."""

    user_id: str
    role: Role
    status: Standing


class ClubInvitation(ApiModel):
    club_id: str
    name: str
    owner_id: str
    invited_at: datetime


class ClubInvitationList(ApiModel):
    items: list[ClubInvitation]


class MemberPage(Page[Member]):
    pass


class MembersQuery(PageQuery):
    page_size: int = Field(50, ge=1, le=100, description="Items per page (default 50).")
    # The name this route took before paging had one vocabulary; clients may still send it.
    limit: int | None = Field(
        None,
        ge=1,
        le=100,
        description="The old name of `pageSize`.",
        json_schema_extra={"deprecated": True},
    )

    @model_validator(mode="after")
    def _old_name(self) -> MembersQuery:
        if self.limit is not None:
            if "page_size" in self.model_fields_set and self.page_size != self.limit:
                raise ValueError("give pageSize, or its old name limit, not both")
            self.page_size = self.limit
        return self


class CallRegistration(RequestModel):
    group_call_id: GroupCallId
