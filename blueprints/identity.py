"""Identity & tokens: ACS tokens for the caller, revoke, and the caller's profile (DESIGN §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from switchboard.http import (
    api_route,
    blueprint,
    json_response,
    no_content,
    parse_body,
    parse_optional_body,
)
from switchboard.lazy import lazy_module
from switchboard.runtime import get_runtime
from switchboard.services.identity import ProfileView

if TYPE_CHECKING:
    from switchboard import models
else:
    models = lazy_module("switchboard.models")

bp = blueprint()
TAG = "identity"


@api_route(
    bp,
    "POST",
    "token",
    tag=TAG,
    summary="Issue an ACS user access token for the caller's own ACS identity",
    request="TokenRequest",
    body_required=False,
    response="TokenResponse",
    errors=(400, 403, 413, 415, 503),
)
async def issue_token(req: func.HttpRequest) -> func.HttpResponse:
    rt = get_runtime()
    caller = await rt.authenticate(req.headers)
    body = parse_optional_body(req, models.TokenRequest) or models.TokenRequest()
    issued = await rt.identity.issue_token(caller, body.scopes, body.expires_in_minutes)
    return json_response(
        models.TokenResponse(
            token=issued.token,
            expires_on=issued.expires_on,
            user=models.CommunicationUser(communication_user_id=issued.communication_user_id),
            scopes=issued.scopes,
        ),
        headers={"Cache-Control": "no-store"},
    )


@api_route(
    bp,
    "POST",
    "token/revoke",
    tag=TAG,
    summary="Revoke every ACS token issued to the caller so far",
    status=204,
    errors=(503,),
)
async def revoke_tokens(req: func.HttpRequest) -> func.HttpResponse:
    rt = get_runtime()
    caller = await rt.authenticate(req.headers)
    await rt.identity.revoke_tokens(caller)
    return no_content()


@api_route(
    bp,
    "POST",
    "token/teams",
    tag=TAG,
    summary="Exchange a Teams user's Entra token for an ACS token (Teams interop)",
    request="TeamsTokenRequest",
    response="TeamsTokenResponse",
    errors=(400, 404, 413, 415, 503),
)
async def exchange_teams_token(req: func.HttpRequest) -> func.HttpResponse:
    rt = get_runtime()
    caller = await rt.authenticate(req.headers)
    body = parse_body(req, models.TeamsTokenRequest)
    issued = await rt.identity.exchange_teams_token(caller, body.aad_token)
    return json_response(
        models.TeamsTokenResponse(
            token=issued.token,
            expires_on=issued.expires_on,
            user=models.TeamsUser(microsoft_teams_user_id=issued.microsoft_teams_user_id),
        ),
        headers={"Cache-Control": "no-store"},
    )


@api_route(bp, "GET", "me", tag=TAG, summary="The caller's profile", response="Profile")
async def get_me(req: func.HttpRequest) -> func.HttpResponse:
    rt = get_runtime()
    caller = await rt.authenticate(req.headers)
    return json_response(_profile(await rt.identity.get_profile(caller)))


@api_route(
    bp,
    "PATCH",
    "me",
    tag=TAG,
    summary="Change the caller's display name",
    request="ProfileUpdate",
    response="Profile",
    errors=(400, 413, 415, 503),
)
async def update_me(req: func.HttpRequest) -> func.HttpResponse:
    rt = get_runtime()
    caller = await rt.authenticate(req.headers)
    body = parse_body(req, models.ProfileUpdate)
    return json_response(_profile(await rt.identity.update_profile(caller, body.display_name)))


@api_route(
    bp,
    "DELETE",
    "me",
    tag=TAG,
    summary="Erase the caller: ACS identity deleted, tokens dead, profile and mappings removed",
    status=204,
    errors=(503,),
)
async def erase_me(req: func.HttpRequest) -> func.HttpResponse:
    rt = get_runtime()
    caller = await rt.authenticate(req.headers)
    await rt.identity.erase(caller)
    return no_content()


def _profile(view: ProfileView) -> models.Profile:
    return models.Profile(
        user_id=view.user_id,
        display_name=view.display_name,
        communication_user_id=view.communication_user_id,
        phone_number=view.phone_number,
        phone_verified=view.phone_verified,
    )
