"""Wire models of the system routes: health."""

from __future__ import annotations

from typing import Literal

from switchboard.models import ApiModel


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
