"""Clubs, the group-call registry: clubs, their members and the active group call (DESIGN §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.http import Reply, blueprint, no_content, route
from switchboard.models.clubs import (
    ActiveCall,
    CallRegistration,
    Club,
    ClubCreate,
    ClubInvitation,
    ClubInvitationList,
    ClubList,
    Invitation,
    Member,
    MemberPage,
    Membership,
    MembersQuery,
)
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

if TYPE_CHECKING:  # annotations only: the service loads when the runtime builds it
    from switchboard.services.clubs import CallView, ClubView, MembershipView

bp = blueprint("clubs")


@route(
    bp,
    "POST",
    "clubs",
    summary="Create a club; the caller is its owner and first member",
    body=ClubCreate,
    response=Club,
    status=201,
)
async def create_club(caller: Caller, body: ClubCreate) -> Club:
    return _club(await get_runtime().clubs.create_club(caller.user_id, body.name, body.visibility))


@route(
    bp,
    "GET",
    "clubs",
    summary="The caller's clubs, each with its active call",
    response=ClubList,
)
async def list_clubs(caller: Caller) -> ClubList:
    return ClubList(items=[_club(c) for c in await get_runtime().clubs.list_clubs(caller.user_id)])


@route(
    bp,
    "GET",
    "clubs/{clubId}",
    summary="A club: members, and anyone for an open club (the call for members only)",
    response=Club,
    errors=(404,),
)
async def get_club(caller: Caller, clubId: str) -> Club:
    return _club(await get_runtime().clubs.get_club(caller.user_id, clubId))


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
async def join_club(caller: Caller, clubId: str) -> Membership:
    return _membership(await get_runtime().clubs.join(caller.user_id, clubId))


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
async def list_club_members(caller: Caller, clubId: str, query: MembersQuery) -> MemberPage:
    page = await get_runtime().clubs.list_members(
        caller.user_id, clubId, query.limit, query.continuation
    )
    return MemberPage(
        items=[
            Member(
                user_id=m.user_id,
                display_name=m.display_name,
                communication_user_id=m.communication_user_id,
                role=m.role,
                joined_at=m.joined_at,
                status=m.status,
            )
            for m in page.items
        ],
        continuation=page.continuation,
    )


@route(
    bp,
    "PUT",
    "clubs/{clubId}/members/{userId}",
    summary="The owner invites a user; they are a member once they accept (POST …/join)",
    response=Invitation,
    errors=(403, 404, 409),
)
async def add_club_member(caller: Caller, clubId: str, userId: str) -> Invitation:
    view = await get_runtime().clubs.invite(caller.user_id, clubId, userId)
    return Invitation(user_id=view.user_id, role=view.role, status=view.status)


@route(
    bp,
    "GET",
    "me/club-invitations",
    summary="The caller's pending club invitations",
    response=ClubInvitationList,
)
async def list_club_invitations(caller: Caller) -> ClubInvitationList:
    return ClubInvitationList(
        items=[
            ClubInvitation(
                club_id=i.club_id, name=i.name, owner_id=i.owner_id, invited_at=i.invited_at
            )
            for i in await get_runtime().clubs.list_invitations(caller.user_id)
        ]
    )


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
    summary="Register the club's active group call; 409 with the active call's groupCallId",
    body=CallRegistration,
    response=ActiveCall,
    status=201,
    errors=(403, 404, 409),
)
async def register_club_call(caller: Caller, clubId: str, body: CallRegistration) -> ActiveCall:
    call, _ = await get_runtime().clubs.register_call(caller.user_id, clubId, body.group_call_id)
    return _call(call)


@route(
    bp,
    "GET",
    "clubs/{clubId}/call",
    summary="The club's active group call (members only)",
    response=ActiveCall,
    errors=(403, 404),
)
async def get_club_call(caller: Caller, clubId: str) -> ActiveCall:
    return _call(await get_runtime().clubs.get_call(caller.user_id, clubId))


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


def _call(view: CallView) -> ActiveCall:
    return ActiveCall(
        group_call_id=view.group_call_id, started_by=view.started_by, started_at=view.started_at
    )


def _club(view: ClubView) -> Club:
    return Club(
        club_id=view.club_id,
        name=view.name,
        owner_id=view.owner_id,
        visibility=view.visibility,
        member_count=view.member_count,
        role=view.role,
        active_call=_call(view.active_call) if view.active_call else None,
        chat_thread_id=view.chat_thread_id,
    )


def _membership(view: MembershipView) -> Membership:
    return Membership(
        club_id=view.club_id, user_id=view.user_id, role=view.role, joined_at=view.joined_at
    )
