"""What one capability's service offers the others: the hooks the composition root wires.

A capability that stores data about a user (friends, clubs, ...) is a `UserDataOwner`: the
runtime lists it once, and `DELETE /api/me` erases its data with the rest; the identity service
never learns which capabilities exist.
"""

from __future__ import annotations

from typing import Protocol


class UserDataOwner(Protocol):
    """A service that keeps data about users and erases it when a user is erased."""

    async def erase_user(self, user_id: str) -> None:
        """Remove everything kept about `user_id`; idempotent (an erase may be retried)."""
        ...
