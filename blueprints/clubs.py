"""Clubs, the group-call registry: clubs, their members and the active call (docs/clubs.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.http import Reply, blueprint, no_content, route
from switchboard.models.clubs import (
    ActiveCall,
    CallRegistration,
    Club,
    ClubCreate,
    ClubInvitationList,
    ClubList,
    Invitation,
    MemberPage,
    Membership,
    MembersQuery,
)
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

if TYPE_CHECKING:  # annotations only: the service loads when the runtime builds it
    from switchboard.services.clubs import (
        CallView,
        ClubView,
        InvitedView,
        MemberPageView,
        MembershipView,
    )

bp = blueprint("clubs")


@route(
    bp,
    "POST",
    "clubs",
    summary="Create a club; the caller is its owner and first member",
    body=ClubCreate,
    response=Club,
    status=201,
    errors=(409,),  # erasure_in_progress: the caller erased their account seconds ago
)
async def create_club(caller: Caller, body: ClubCreate) -> ClubView:
    return await get_runtime().clubs.create_club(caller.user_id, body.name, body.visibility)


@route(
    bp,
    "GET",
    "clubs",
    summary="The caller's clubs, each with its active call",
    response=ClubList,
)
async def list_clubs(caller: Caller) -> dict[str, list[ClubView]]:
    return {"items": await get_runtime().clubs.list_clubs(caller.user_id)}


@route(
    bp,
    "GET",
    "clubs/{clubId}",
    summary="A club: members, and anyone for an open club (the call for members only)",
    response=Club,
    errors=(404,),
)
async def get_club(caller: Caller, clubId: str) -> ClubView:
    return await get_runtime().clubs.get_club(caller.user_id, clubId)


@route(
    bp,
    "DELETE",
    "clubs/{clubId}",
    summary="The owner deletes the club, its members and its call",
    status=204,
    errors=(403, 404),
)
async def delete_club(caller: Caller, clubId: str) -> Reply:
    await get_runtime().clubs.delete_club(caller.user_id, clubId)
    return no_content


@route(
    bp,
    "POST",
    "clubs/{clubId}/join",
    summary="Join an open club, or accept an invitation to any club",
    response=Membership,
    errors=(404, 409),
)
async def join_club(caller: Caller, clubId: str) -> MembershipView:
    return await get_runtime().clubs.join(caller.user_id, clubId)


@route(
    bp,
    "GET",
    "clubs/{clubId}/members",
    summary=(
        "A page of the club's members (members only); ACS ids of the caller and their friends "
        "only; the invitees follow, for the owner"
    ),
    query=MembersQuery,
    response=MemberPage,
    errors=(403, 404),
)
async def list_club_members(caller: Caller, clubId: str, query: MembersQuery) -> MemberPageView:
    return await get_runtime().clubs.list_members(
        caller.user_id, clubId, query.page_size, query.continuation
    )


@route(
    bp,
    "PUT",
    "clubs/{clubId}/members/{userId}",
    summary="The owner invites a user; they are a member once they accept (POST …/join)",
    response=Invitation,
    errors=(403, 404, 409),
)
async def add_club_member(caller: Caller, clubId: str, userId: str) -> InvitedView:
    return await get_runtime().clubs.invite(caller.user_id, clubId, userId)


@route(
    bp,
    "GET",
    "me/club-invitations",
    summary="The caller's pending club invitations",
    response=ClubInvitationList,
)
async def list_club_invitations(caller: Caller) -> ClubInvitationList:
    invitations = await get_runtime().clubs.list_invitations(caller.user_id)
    return ClubInvitationList.model_validate({"items": invitations})


@route(
    bp,
    "DELETE",
    "clubs/{clubId}/members/{userId}",
    summary=(
        "The owner removes a member or withdraws an invitation; a member leaves, an invitee "
        "declines (their own id)"
    ),
    status=204,
    errors=(403, 404),
)
async def remove_club_member(caller: Caller, clubId: str, userId: str) -> Reply:
    await get_runtime().clubs.remove_member(caller.user_id, clubId, userId)
    return no_content


@route(
    bp,
    "PUT",
    "clubs/{clubId}/call",
    summary=(
        "Register the club's active call: a group call id, or (CLUB_CALLS=rooms, no body) a new "
        "ACS room with the caller on its roster; 409 with the active call's id"
    ),
    body=CallRegistration | None,
    response=ActiveCall,
    status=201,
    errors=(400, 403, 404, 409),
)
async def register_club_call(
    caller: Caller, clubId: str, body: CallRegistration | None
) -> CallView:
    group_call_id = body.group_call_id if body is not None else None
    call, _ = await get_runtime().clubs.register_call(caller.user_id, clubId, group_call_id)
    return call


@route(
    bp,
    "GET",
    "clubs/{clubId}/call",
    summary=(
        "The club's active call (members only); in rooms mode the caller is put on the room's "
        "roster first"
    ),
    response=ActiveCall,
    errors=(403, 404),
)
async def get_club_call(caller: Caller, clubId: str) -> CallView:
    return await get_runtime().clubs.get_call(caller.user_id, clubId)


@route(
    bp,
    "DELETE",
    "clubs/{clubId}/call",
    summary="End the club's registered call (members only)",
    status=204,
    errors=(403, 404),
)
async def end_club_call(caller: Caller, clubId: str) -> Reply:
    await get_runtime().clubs.end_call(caller.user_id, clubId)
    return no_content
