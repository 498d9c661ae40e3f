"""Wire models of the system routes: health and the dev-mode sign-in."""

from __future__ import annotations

from typing import Literal

from switchboard.models import ApiModel, DisplayName, RequestModel, UserId


class ReactionBacklog(ApiModel):
    """The reaction layer's follow-up work, as numbers (work keys name users)."""

    pending: int
    parked: int
    oldest_age_seconds: float | None


class Health(ApiModel):
    status: Literal["ok", "unavailable"]
    store: str
    identity: str
    auth: str
    # None when the store is unreachable (unknown) or the numbers could not be read this time.
    reactions: ReactionBacklog | None = None


class ParkedWorkItem(ApiModel):
    kind: str
    key: str
    attempts: int
    last_error: str | None


class ParkedWorkList(ApiModel):
    items: list[ParkedWorkItem]


class Rearmed(ApiModel):
    rearmed: int


class DevLoginRequest(RequestModel):
    user_id: UserId
    display_name: DisplayName | None = None


class DevLoginResponse(ApiModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int


class Jwks(ApiModel):
    keys: list[dict[str, str | list[str]]]
