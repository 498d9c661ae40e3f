"""Who is calling: the authenticated app user, as the token (never the request) says."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in app user: `user_id` is the token's subject, `name` its display-name claim."""

    user_id: str
    name: str | None = None


CURRENT_CALLER: ContextVar[Caller | None] = ContextVar("switchboard_caller", default=None)
"""The caller of the request being served (set by the route decorator for its duration; None in
reconcilers and event handlers). Read by the composition root only, to tell a user's own first
request (which may create their profile) from everything else (which never does)."""
