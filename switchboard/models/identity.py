"""Wire models of the identity capability: tokens, Teams token exchange, the caller's profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from switchboard.acs import TOKEN_MINUTES_MAX, TOKEN_MINUTES_MIN
from switchboard.models import ApiModel, DisplayName, RequestModel


class TokenRequest(RequestModel):
    scopes: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description="ACS scope names; the server's TOKEN_SCOPES allow-list decides.",
        examples=[["chat", "voip"]],
    )
    expires_in_minutes: int | None = Field(
        None, ge=TOKEN_MINUTES_MIN, le=TOKEN_MINUTES_MAX, description="Token lifetime (ACS range)."
    )


class CommunicationUser(ApiModel):
    communication_user_id: str


class TokenResponse(ApiModel):
    """The ACS SDKs' CommunicationUserToken shape, so clients of the ACS samples work unchanged."""

    token: str
    expires_on: datetime
    user: CommunicationUser
    scopes: list[str]


class TeamsTokenRequest(RequestModel):
    aad_token: str = Field(
        min_length=1,
        max_length=16384,
        description="The Teams user's Entra access token for ACS "
        "(scopes https://auth.msft.communication.azure.com/Teams.ManageCalls and ManageChats).",
    )


class TeamsUser(ApiModel):
    microsoft_teams_user_id: str


class TeamsTokenResponse(ApiModel):
    token: str
    expires_on: datetime
    user: TeamsUser


class Profile(ApiModel):
    user_id: str
    display_name: str
    communication_user_id: str | None
    phone_number: str | None = Field(
        None, description="The caller's own verified number, E.164 (shown to its owner only)."
    )
    phone_verified: bool


class ProfileUpdate(RequestModel):
    display_name: DisplayName
