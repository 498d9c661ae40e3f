"""Wire models of the system routes: health."""

from __future__ import annotations

from typing import Literal

from switchboard.models import ApiModel


class Health(ApiModel):
    status: Literal["ok", "unavailable"]
    store: str
    identity: str
    auth: str
