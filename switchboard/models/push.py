"""Wire models of the push capability: a device registration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from switchboard.models import RequestModel


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
