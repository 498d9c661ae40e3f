"""Identity & tokens: ACS tokens for the caller, revoke, and the caller's profile
(docs/identity.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.http import Reply, blueprint, no_content, route
from switchboard.models.identity import (
    CommunicationUser,
    Profile,
    ProfileUpdate,
    TeamsTokenRequest,
    TeamsTokenResponse,
    TeamsUser,
    TokenRequest,
    TokenResponse,
)
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

if TYPE_CHECKING:  # annotations only: the service loads when the runtime builds it
    from switchboard.services.identity import ProfileView

bp = blueprint("identity")
# registers_caller=False throughout: these routes' service creates, reads or erases the profile
# itself, and a Teams user's token exchange stores nothing about the app user.
NO_STORE = {"Cache-Control": "no-store"}


@route(
    bp,
    "POST",
    "token",
    summary="Issue an ACS user access token for the caller's own ACS identity",
    body=TokenRequest | None,
    response=TokenResponse,
    errors=(403, 409, 429),
    registers_caller=False,
)
async def issue_token(caller: Caller, body: TokenRequest | None) -> Reply:
    request = body or TokenRequest()
    issued = await get_runtime().identity.issue_token(
        caller, request.scopes, request.expires_in_minutes
    )
    token = TokenResponse(
        token=issued.token,
        expires_on=issued.expires_on,
        user=CommunicationUser(communication_user_id=issued.communication_user_id),
        scopes=issued.scopes,
    )
    return Reply(token, headers=NO_STORE)


@route(
    bp,
    "POST",
    "token/revoke",
    summary="Revoke every ACS token issued to the caller so far",
    status=204,
    errors=(409,),
    registers_caller=False,
)
async def revoke_tokens(caller: Caller) -> Reply:
    await get_runtime().identity.revoke_tokens(caller)
    return no_content


@route(
    bp,
    "POST",
    "token/teams",
    summary="Exchange a Teams user's Entra token for an ACS token (Teams interop)",
    body=TeamsTokenRequest,
    response=TeamsTokenResponse,
    errors=(404, 429),
    registers_caller=False,
)
async def exchange_teams_token(caller: Caller, body: TeamsTokenRequest) -> Reply:
    issued = await get_runtime().identity.exchange_teams_token(caller, body.aad_token)
    token = TeamsTokenResponse(
        token=issued.token,
        expires_on=issued.expires_on,
        user=TeamsUser(microsoft_teams_user_id=issued.microsoft_teams_user_id),
    )
    return Reply(token, headers=NO_STORE)


# 409 `erasure_in_progress` (with Retry-After): the caller erased their account seconds ago.
@route(
    bp,
    "GET",
    "me",
    summary="The caller's profile",
    response=Profile,
    errors=(409,),
    registers_caller=False,
)
async def get_me(caller: Caller) -> ProfileView:
    return await get_runtime().identity.get_profile(caller)


@route(
    bp,
    "PATCH",
    "me",
    summary="Change the caller's display name",
    body=ProfileUpdate,
    response=Profile,
    errors=(409,),
    registers_caller=False,
)
async def update_me(caller: Caller, body: ProfileUpdate) -> ProfileView:
    return await get_runtime().identity.update_profile(caller, body.display_name)


@route(
    bp,
    "DELETE",
    "me",
    summary="Erase the caller: ACS identity deleted, tokens dead, profile and mappings removed",
    status=204,
    registers_caller=False,
)
async def erase_me(caller: Caller) -> Reply:
    await get_runtime().identity.erase(caller)
    return no_content
