"""Who is calling: the authenticated app user, as the token (never the request) says."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in app user: `user_id` is the token's subject, `name` its display-name claim."""

    user_id: str
    name: str | None = None
