"""What one capability's service offers the others: the hooks the composition root wires.

A capability that stores data about a user (friends, clubs, ...) is a `UserDataOwner`: the
runtime lists it once, and `DELETE /api/me` erases its data with the rest. One that copies a
user's display name (a friend list, a club roster) is a `ProfileObserver`, told when it changes.
The identity service never learns which capabilities exist.
"""

from __future__ import annotations

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


class FriendshipObserver(Protocol):
    """A service that keeps something per pair of friends (a direct chat thread, ...).

    Told after an accepted friendship ends (unfriend, block, or erase of either user). A failing
    observer is logged and never fails the friends operation, so it must tolerate being missed
    (an ended friendship is also visible through `FriendsService.are_friends`).
    """

    async def friendship_ended(self, user_id: str, other_id: str) -> None:
        """`user_id` and `other_id` are no longer friends; idempotent."""
        ...
