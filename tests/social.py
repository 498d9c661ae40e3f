"""The friends, chat and meetings services wired as the runtime wires them, on any store, for
tests that call the services directly: real profiles (identity's `get_many` over the store's
`users`), real durable work and a reactor with the `pair` and `meeting` reconcilers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from switchboard.adapters.chat_local import LocalChatProvider
from switchboard.ports import ChatProvider, DocumentStore, MeetingProvider
from switchboard.services.chat import ChatService
from switchboard.services.friends import FriendsService
from switchboard.services.identity import IdentityService, TokenPolicy
from switchboard.services.meetings import MeetingsService
from switchboard.services.reactions import Reactor, Work
from tests.fakes import FakeIdentityProvider


class Social:
    """Friends, chat and meetings over `store`, with the reactor that follows them."""

    def __init__(
        self,
        store: DocumentStore,
        data_dir: Path,
        *,
        chat: ChatProvider | None = None,
        meeting_provider: MeetingProvider | None = None,
        pstn_caller_id: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.work = Work(store)
        self.identity = IdentityService(
            store, FakeIdentityProvider(), TokenPolicy(("chat", "voip"), 60)
        )
        self.chat_provider = chat or LocalChatProvider(data_dir)
        self.friends = FriendsService(
            store,
            profiles=self.identity,
            work=self.work,
            contact=self.identity.call_contact,
            direct_threads=lambda a, b: self.chat.reconcile_direct(a, b),
            pstn_caller_id=pstn_caller_id,
            clock=clock,
        )
        self.chat = ChatService(
            store,
            self.chat_provider,
            self.identity.chat_identity,
            are_friends=self.friends.are_friends,
            profiles=self.identity,
            work=self.work,
        )
        self.meetings = MeetingsService(
            store,
            meeting_provider,
            profiles=self.identity,
            work=self.work,
            observers=[self.chat],
        )
        self.reactor = Reactor(
            store,
            {"pair": self.friends.reconcile_pair, "meeting": self.meetings.reconcile_meeting},
            self.work,
        )

    async def erase(self, user_id: str, *, drain: bool = True) -> None:
        """What `DELETE /api/me` and the erasure reconciler do to these capabilities: the
        profile goes, each capability purges, the work that fans out runs (`drain`: not when
        several erases run at once — concurrent drains ignore each other's claims and keep
        re-running the same items; one drain at the end does it)."""
        await self.store.delete("users", user_id, user_id)
        for owner in (self.friends, self.meetings, self.chat):
            await owner.purge_user(user_id)
        if drain:
            await self.reactor.drain()
