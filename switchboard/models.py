"""Request and response models: the wire shapes of DESIGN §4, shared by handlers and OpenAPI.

Fields are snake_case in Python and camelCase on the wire. Request models forbid unknown fields,
so a misspelt `expiresInMinute` is a 400 naming it rather than a silently ignored option.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from switchboard import ids
from switchboard.acs import TOKEN_MINUTES_MAX, TOKEN_MINUTES_MIN

# User ids are token subjects: the one id rule (switchboard.ids) decides here and in
# switchboard.auth alike, so dev login never issues a token that authentication then refuses.
# The length bounds are repeated only so that the OpenAPI schema shows them.
UserId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ids.MAX_ID_LENGTH),
    AfterValidator(lambda value: ids.check_id(value, "userId")),
]
DisplayName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class ApiModel(BaseModel):
    """Base of every wire model: camelCase aliases, accepted by alias or by name."""

    # defer_build: validators are built on first use, not at import (cold start matters here).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)


class RequestModel(ApiModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )


# --- identity ---------------------------------------------------------------------------------


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
    phone_number: str | None = Field(None, description="Masked: never the full number.")
    phone_verified: bool


class ProfileUpdate(RequestModel):
    display_name: DisplayName


# --- system -----------------------------------------------------------------------------------


class Health(ApiModel):
    status: Literal["ok", "unavailable"]
    store: str
    identity: str
    auth: str


class DevLoginRequest(RequestModel):
    user_id: UserId
    display_name: DisplayName | None = None


class DevLoginResponse(ApiModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int


class Jwks(ApiModel):
    keys: list[dict[str, str | list[str]]]


class ProblemDetails(ApiModel):
    """RFC 9457 problem details with Switchboard's stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
