"""Friends: requests, lists, blocks, call-info and invite codes (docs/friends.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.http import Reply, blueprint, no_content, route
from switchboard.models.friends import (
    CallInfo,
    FriendList,
    FriendsQuery,
    InviteCode,
    RedeemedInvite,
    Relation,
)
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

if TYPE_CHECKING:  # annotations only: the service loads when the runtime builds it
    from switchboard.services.friends import FriendPage, Redeemed

bp = blueprint("friends")
NO_STORE = {"Cache-Control": "no-store"}


@route(
    bp,
    "GET",
    "friends",
    summary="The caller's friends, incoming or outgoing requests, by display name, paged",
    query=FriendsQuery,
    response=FriendList,
)
async def list_friends(caller: Caller, query: FriendsQuery) -> FriendPage:
    return await get_runtime().friends.list_friends(
        caller, query.status, query.page_size, query.continuation
    )


@route(
    bp,
    "PUT",
    "friends/{userId}",
    summary="Send a friend request, or accept the user's request",
    response=Relation,
    errors=(404, 409),
)
async def request_friend(caller: Caller, userId: str) -> Relation:
    status = await get_runtime().friends.request(caller, userId)
    return Relation(user_id=userId, status="accepted" if status == "accepted" else "outgoing")


@route(
    bp,
    "DELETE",
    "friends/{userId}",
    summary="Unfriend, cancel a request or decline one",
    status=204,
)
async def remove_friend(caller: Caller, userId: str) -> Reply:
    await get_runtime().friends.remove(caller, userId)
    return no_content


@route(
    bp,
    "GET",
    "friends/{userId}/call-info",
    summary="What the caller needs to call an accepted friend: ACS identity and phone route",
    response=CallInfo,
    errors=(404,),
)
async def friend_call_info(caller: Caller, userId: str) -> Reply:
    return Reply(await get_runtime().friends.call_info(caller, userId), headers=NO_STORE)


@route(
    bp,
    "PUT",
    "blocks/{userId}",
    summary="Block a user: ends any friendship or request and refuses theirs",
    status=204,
)
async def block_user(caller: Caller, userId: str) -> Reply:
    await get_runtime().friends.block(caller, userId)
    return no_content


@route(bp, "DELETE", "blocks/{userId}", summary="Unblock a user", status=204)
async def unblock_user(caller: Caller, userId: str) -> Reply:
    await get_runtime().friends.unblock(caller, userId)
    return no_content


@route(
    bp,
    "POST",
    "friends/invites",
    summary="A one-time friend invite code (valid 24 h) to share out of band",
    response=InviteCode,
    status=201,
    errors=(409,),
)
async def create_invite(caller: Caller) -> Reply:
    return Reply(await get_runtime().friends.create_invite(caller), 201, NO_STORE)


@route(
    bp,
    "POST",
    "friends/invites/{code}",
    summary="Redeem a friend invite code: its owner and the caller become friends",
    response=RedeemedInvite,
    errors=(404,),
)
async def redeem_invite(caller: Caller, code: str) -> Redeemed:
    return await get_runtime().friends.redeem_invite(caller, code)
