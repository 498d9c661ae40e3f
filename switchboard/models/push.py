"""Wire models of the push capability: a device registration, and the dev outbox."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from switchboard.models import ApiModel, RequestModel


class DeviceRegistration(RequestModel):
    """One of the caller's devices, as its push service knows it."""

    platform: Literal["apns", "fcmv1"] = Field(
        description="apns: Apple Push Notification service; fcmv1: Firebase Cloud Messaging v1."
    )
    push_channel: str = Field(
        min_length=1,
        max_length=4096,
        pattern=r"^[\x21-\x7e]+$",
        description="The APNs device token (hex) or the FCM registration token.",
    )


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
    """Dev only: what the local push hub sent, newest first."""

    items: list[SentPush]
