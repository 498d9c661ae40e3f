"""Wire models of the system routes: health and the dev-mode sign-in."""

from __future__ import annotations

from typing import Literal

from switchboard.models import ApiModel, DisplayName, RequestModel, UserId


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
