"""What one capability's service offers the others: the hooks the composition root wires.

A capability that stores data about a user (friends, clubs, ...) is a `UserDataOwner`: the
runtime lists it once, and the `erasure` reconciler that follows `DELETE /api/me` purges its data
with the rest. One that copies a
user's display name (a friend list, a club roster) is a `ProfileObserver`, told when it changes.
The identity service never learns which capabilities exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """What other capabilities may know of a user's profile (identity's API, not its documents).

    `generation` is a random token set when the profile is created: a copy that recorded the
    generation it saw can tell the user it named from a later user of the same id (after an
    erase and a new sign-in). Profiles created before generations existed have "".
    """

    user_id: str
    display_name: str
    communication_user_id: str | None
    generation: str


class Profiles(Protocol):
    """Identity's read API for the other capabilities: they never read its documents."""

    async def get_many(self, user_ids: Sequence[str]) -> Mapping[str, ProfileInfo]:
        """The profiles of `user_ids` that exist, in one batched read; a user without a profile
        (erased, or never signed in) is absent."""
        ...


class UserDataOwner(Protocol):
    """A service that keeps data about users and purges it when a user is erased."""

    async def purge_user(self, user_id: str) -> None:
        """Remove everything kept about `user_id`, who is erased (their profile is gone).

        Called by the `erasure` reconciler, in the background, after the erase answered: it may
        run several times, late, or after a crash, so it is idempotent; raise to be retried.
        Work that grows with the user's data (thousands of friends or members) fans out into
        per-key work (`work.now(kind, key)`) rather than looping here.
        """
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


class FriendshipObserver(Protocol):
    """A service that keeps something per pair of friends (a direct chat thread, ...).

    Told after an accepted friendship ends (unfriend, block, or erase of either user). A failing
    observer is logged and never fails the friends operation, so it must tolerate being missed
    (an ended friendship is also visible through `FriendsService.are_friends`).
    """

    async def friendship_ended(self, user_id: str, other_id: str) -> None:
        """`user_id` and `other_id` are no longer friends; idempotent."""
        ...
