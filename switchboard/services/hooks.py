"""What one capability's service offers the others: the hooks the composition root wires.

A capability that stores data about a user (friends, clubs, ...) is a `UserDataOwner`: the
runtime lists it once, and `DELETE /api/me` erases its data with the rest. One that copies a
user's display name (a friend list, a club roster) is a `ProfileObserver`, told when it changes.
The identity service never learns which capabilities exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class UserDataOwner(Protocol):
    """A service that keeps data about users and erases it when a user is erased."""

    async def erase_user(self, user_id: str) -> None:
        """Remove everything kept about `user_id`; idempotent (an erase may be retried)."""
        ...


class ProfileObserver(Protocol):
    """A service that keeps a copy of users' display names and refreshes it on a change."""

    async def profile_changed(self, user_id: str, display_name: str) -> None:
        """Called after the profile is saved; idempotent (a failed update may be retried)."""
        ...


class MeetingObserver(Protocol):
    """A service told when a meeting is scheduled or cancelled (chat lists meeting chats).

    Called after the meeting is stored (or removed); a failing observer is logged and never
    fails the meeting operation, so observers must tolerate a missed call.
    """

    async def meeting_created(
        self,
        meeting_id: str,
        subject: str,
        thread_id: str | None,
        participant_ids: Sequence[str],
    ) -> None: ...

    async def meeting_deleted(self, meeting_id: str, participant_ids: Sequence[str]) -> None: ...
