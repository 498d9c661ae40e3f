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


class ClubObserver(Protocol):
    """A capability that follows clubs (chat: a club's thread follows its members; push: a push
    when a club's call starts). Called after the club operation is stored; a failing observer is
    logged by the clubs service and never fails or undoes the operation, so every method must be
    idempotent and may be called again for the same fact (a retried request)."""

    async def member_added(self, club_id: str, user_id: str) -> None:
        """`user_id` became a member of `club_id` (created the club, joined, or was added)."""
        ...

    async def member_removed(self, club_id: str, user_id: str) -> None:
        """`user_id` left or was removed (also when erased); not called for a deleted club."""
        ...

    async def club_deleted(self, club_id: str, member_ids: Sequence[str]) -> None:
        """The club is gone (owner's DELETE, or its last member left); `member_ids` were its
        members when it was deleted."""
        ...

    async def call_started(
        self,
        club_id: str,
        club_name: str,
        group_call_id: str,
        started_by: str,
        member_ids: Sequence[str] | None,
    ) -> None:
        """A member registered a new active call. `member_ids` is None when the clubs service
        did not gather them (it never does on the PUT path, which is held to 3 store operations);
        an observer that needs them pages `ClubsService.iter_member_ids(club_id)`."""
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
