"""Wire models of the dev routes: the dev sign-in, its keys, and the local SMS and push outboxes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from switchboard.models import ApiModel, DisplayName, RequestModel, UserId


class DevLoginRequest(RequestModel):
    user_id: UserId
    display_name: DisplayName | None = None


class DevLoginResponse(ApiModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int


class Jwks(ApiModel):
    keys: list[dict[str, str | list[str]]]


class OutboxItem(ApiModel):
    message_id: str
    from_: str = Field(alias="from")
    to: str
    message: str
    tag: str
    status: str
    created_at: datetime


class Outbox(ApiModel):
    items: list[OutboxItem]


class DeliveredTo(ApiModel):
    installation_id: str
    platform: str


class SentPush(ApiModel):
    seq: int
    sent_at: float
    tags: list[str]
    title: str
    body: str
    data: dict[str, str]
    delivered_to: list[DeliveredTo]


class PushOutbox(ApiModel):
    """What the local push hub sent, newest first."""

    items: list[SentPush]


class ParkedWorkItem(ApiModel):
    """A reaction work item that kept failing: its kind, key, attempts, the error's class."""

    kind: str
    key: str
    attempts: int
    last_error: str | None


class ParkedWorkList(ApiModel):
    items: list[ParkedWorkItem]


class Rearmed(ApiModel):
    rearmed: int
