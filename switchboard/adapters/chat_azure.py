"""The ChatProvider port on Azure Communication Services Chat, through the official async SDK
(`azure.communication.chat.aio`).

- **Who acts**: the controller's service identity (`services.chat_identity`). `token_source`
  mints its `chat` token through the identity port; the SDK's `CommunicationTokenCredential`
  holds it and calls the refresher shortly before it expires, so a token is minted about once a
  day, never per request. A 401 drops the credential, so the next call starts from a new token.
- **Idempotency**: thread creation sends the caller's idempotency token as
  `repeatability-request-id`, so a retried request returns the first thread instead of a second.
- **Throttling**: ACS allows 10 thread creations per 10 s per user (and every thread is created
  by the one service identity), 10 participant changes per 10 s per thread. A 429 is waited out
  for its Retry-After when that fits in `throttle_budget` seconds (summed over one operation);
  past the budget it becomes `DependencyUnavailable("chat", retry_after=…)`, a 503 for the API
  caller. The SDK's own retry policy retries only connection failures (retry_status=0).
- **Errors**: 404 → `ChatThreadNotFound` on add and list, success on remove and delete (gone);
  a 400 on add → `ChatThreadFull` (what ACS answers past 250 participants, the only 400 the
  controller's own well-formed requests can get); 401/403, 5xx, connection failures →
  `DependencyUnavailable` through the Azure adapter kit, with one log line naming what to check.

One `ChatClient` is created at first use and reused; a `ChatThreadClient` per operation shares
its transport (the connection pool), so participant changes cost no new connection.
The SDK is imported at first use: the embedded mode never loads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

# azure-core only (every Azure adapter has it); the Chat SDK itself is imported at first use.
from azure.core.pipeline.transport import AsyncHttpTransport

from switchboard.adapters import azure as kit
from switchboard.errors import DependencyUnavailable
from switchboard.ports import (
    MAX_PARTICIPANTS_PER_ADD,
    ChatParticipant,
    ChatThreadFull,
    ChatThreadNotFound,
    IssuedToken,
)

if TYPE_CHECKING:
    from azure.communication.chat.aio import ChatClient, CommunicationTokenCredential
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import HttpResponseError

logger = logging.getLogger(__name__)

DEPENDENCY = "chat"
CREDENTIALS_CHECK = (
    "the chat service identity's token (ACS_ENDPOINT / ACS_CONNECTION_STRING, and that the "
    "identity in the system container belongs to this ACS resource)"
)
# Wait out a 429 inside the request for at most this long in all: ACS's windows are 10 s, so one
# wait usually clears it; more would hold the HTTP caller too long.
DEFAULT_THROTTLE_BUDGET_SECONDS = 10.0
DEFAULT_CLIENT_KWARGS = kit.ACS_CLIENT_KWARGS

TokenSource = Callable[[], Awaitable[tuple[str, IssuedToken]]]
_T = TypeVar("_T")


class AzureChatProvider:
    """ACS chat threads owned by the controller's service identity (async SDK)."""

    def __init__(
        self,
        endpoint: str,
        token_source: TokenSource,
        *,
        throttle_budget: float = DEFAULT_THROTTLE_BUDGET_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        call_bound: float = kit.CALL_BOUND_SECONDS,
        **client_kwargs: Any,
    ) -> None:
        """`endpoint`: the ACS resource (https://….communication.azure.com); `token_source`:
        mints (service identity, chat token). `client_kwargs` go to the SDK clients (tests pass
        `transport=`)."""
        self._endpoint = endpoint
        self._token_source = token_source
        self._throttle_budget = throttle_budget
        self._sleep = sleep
        self.call_bound = call_bound
        # After a 429, other requests get 503 at once until its Retry-After is over; only the
        # request that saw it may wait it out (inside the throttle budget) and call again.
        self.backoff = kit.Backoff(DEPENDENCY)
        self._client_kwargs = {**DEFAULT_CLIENT_KWARGS, **client_kwargs}
        self._transport: AsyncHttpTransport | None = client_kwargs.get(  # type: ignore[type-arg]
            "transport"
        )
        self._credential: CommunicationTokenCredential | None = None
        self._client: ChatClient | None = None
        self._service_user: str | None = None
        self._setup = asyncio.Lock()

    # -- ChatProvider ------------------------------------------------------------------------

    async def create_thread(
        self, topic: str, participants: Sequence[ChatParticipant], *, idempotency_token: str
    ) -> str:
        """POST /chat/threads with `repeatability-request-id`: the idempotency token."""
        _check_batch(participants)
        sdk_participants = _sdk_participants(participants)

        async def call() -> str:
            client = await self._chat_client()
            result = await client.create_chat_thread(
                topic, thread_participants=sdk_participants, idempotency_token=idempotency_token
            )
            if result.errors:
                logger.warning("ACS left %d participant(s) out of a new thread", len(result.errors))
            return str(result.chat_thread.id)

        return await self._call("create_thread", call)

    async def add_participants(
        self, thread_id: str, participants: Sequence[ChatParticipant]
    ) -> None:
        """POST /chat/threads/{id}/participants/:add."""
        _check_batch(participants)
        if not participants:
            return
        sdk_participants = _sdk_participants(participants)

        async def call() -> None:
            async with await self._thread_client(thread_id) as thread:
                failed = await thread.add_participants(sdk_participants)
            if failed:
                logger.warning("ACS refused %d participant(s) of an add", len(failed))

        await self._call("add_participants", call, not_found=_raise_thread_not_found, full=True)

    async def remove_participant(self, thread_id: str, communication_user_id: str) -> None:
        """POST /chat/threads/{id}/participants/:remove; a participant already gone is fine."""
        from azure.communication.chat import CommunicationUserIdentifier

        async def call() -> None:
            async with await self._thread_client(thread_id) as thread:
                await thread.remove_participant(CommunicationUserIdentifier(communication_user_id))

        await self._call("remove_participant", call, not_found=_ignore)

    async def list_participants(self, thread_id: str) -> list[str]:
        """GET /chat/threads/{id}/participants, every page (the SDK follows `nextLink`); the
        service identity left out. 404 → ChatThreadNotFound."""

        async def call() -> list[str]:
            async with await self._thread_client(thread_id) as thread:
                found = [
                    str(p.identifier.raw_id)
                    async for p in thread.list_participants(results_per_page=200)
                ]
            return sorted(acs_id for acs_id in found if acs_id != self._service_user)

        return await self._call("list_participants", call, not_found=_raise_thread_not_found)

    async def delete_thread(self, thread_id: str) -> None:
        """DELETE /chat/threads/{id}; a thread already gone is fine."""

        async def call() -> None:
            client = await self._chat_client()
            await client.delete_chat_thread(thread_id)

        await self._call("delete_thread", call, not_found=_ignore)

    async def close(self) -> None:
        client, self._client = self._client, None
        credential, self._credential = self._credential, None
        if client is not None:
            await client.close()
        if credential is not None:
            await credential.close()
        transport, self._transport = self._transport, None
        if transport is not None and "transport" not in self._client_kwargs:
            await transport.close()

    # -- internals ---------------------------------------------------------------------------

    async def _chat_client(self) -> ChatClient:
        if self._client is not None:
            return self._client
        async with self._setup:
            if self._client is None:
                from azure.communication.chat.aio import ChatClient, CommunicationTokenCredential

                self._service_user, first = await self._token_source()
                self._credential = CommunicationTokenCredential(
                    first.token, token_refresher=self._refresh
                )
                self._client = ChatClient(self._endpoint, self._credential, **self._sdk_kwargs())
        return self._client

    async def _thread_client(self, thread_id: str) -> Any:
        """A ChatThreadClient on the shared transport (closing it leaves the transport open)."""
        from azure.communication.chat.aio import ChatThreadClient

        await self._chat_client()
        assert self._credential is not None
        return ChatThreadClient(self._endpoint, self._credential, thread_id, **self._sdk_kwargs())

    def _sdk_kwargs(self) -> dict[str, Any]:
        if self._transport is None:
            from azure.core.pipeline.transport import AioHttpTransport

            self._transport = AioHttpTransport()
        kwargs = {k: v for k, v in self._client_kwargs.items() if k != "transport"}
        return {**kwargs, "transport": _SharedTransport(self._transport)}

    async def _refresh(self) -> AccessToken:
        """The credential's refresher: the next token, a few minutes before this one expires."""
        from azure.core.credentials import AccessToken

        _, issued = await self._token_source()
        return AccessToken(issued.token, int(issued.expires_on.timestamp()))

    async def _forget_credential(self) -> None:
        client, self._client = self._client, None
        credential, self._credential = self._credential, None
        if client is not None:
            await client.close()
        if credential is not None:
            await credential.close()

    async def _call(
        self,
        operation: str,
        call: Callable[[], Awaitable[_T]],
        *,
        not_found: Callable[[], _T] | None = None,
        full: bool = False,
    ) -> _T:
        """Run one operation: waits out 429s inside the budget, maps every failure."""
        waited = 0.0
        while True:
            seen = _Seen()
            try:
                return await self._attempt(operation, call, seen, not_found, full, waited == 0)
            except DependencyUnavailable:
                wait = seen.throttled
                if wait is not None and waited + wait <= self._throttle_budget:
                    waited += wait
                    await self._sleep(wait)
                    continue
                if seen.refused:
                    # Refused credentials: start from a new token next time.
                    await self._forget_credential()
                raise

    async def _attempt(
        self,
        operation: str,
        call: Callable[[], Awaitable[_T]],
        seen: _Seen,
        not_found: Callable[[], _T] | None,
        full: bool,
        check_backoff: bool = True,
    ) -> _T:
        from azure.core.exceptions import AzureError

        def on_status(error: HttpResponseError) -> None:
            status = error.status_code
            if status in (401, 403):
                seen.refused = True
            if status == 404 and not_found is not None:
                raise _NotFound from None
            if status == 400 and full:
                raise ChatThreadFull("ACS refused the add (the thread is full)") from None
            if status == 429:
                seen.throttled = kit.retry_after_seconds(kit.response_headers(error))

        try:
            async with kit.guarded(
                self.backoff,
                service="ACS Chat",
                operation=operation,
                seconds=self.call_bound,
                check=check_backoff,
                log=logger,
            ):
                with kit.sdk_errors(
                    DEPENDENCY,
                    service="ACS Chat",
                    check=CREDENTIALS_CHECK,
                    operation=operation,
                    on_status=on_status,
                    # Any other AzureError is a failure to get an answer: try again later.
                    connection_errors=(AzureError,),
                    backoff=self.backoff,
                    log=logger,
                ):
                    return await call()
        except _NotFound:
            assert not_found is not None  # on_status raises it only then
            return not_found()


class _Seen:
    """What one attempt's failure said: throttled (the wait asked for) or credentials refused."""

    def __init__(self) -> None:
        self.throttled: int | None = None
        self.refused = False


class _NotFound(Exception):
    """A 404 the operation maps itself (to ChatThreadNotFound, or to success)."""


def _raise_thread_not_found() -> NoReturn:
    raise ChatThreadNotFound("the chat thread does not exist")


def _ignore() -> None:
    return None


def _check_batch(participants: Sequence[ChatParticipant]) -> None:
    if len(participants) > MAX_PARTICIPANTS_PER_ADD:
        raise ValueError(f"at most {MAX_PARTICIPANTS_PER_ADD} participants per call")


def _sdk_participants(participants: Sequence[ChatParticipant]) -> list[Any]:
    from azure.communication.chat import ChatParticipant as SdkParticipant
    from azure.communication.chat import CommunicationUserIdentifier

    return [
        SdkParticipant(
            identifier=CommunicationUserIdentifier(p.communication_user_id),
            display_name=p.display_name,
        )
        for p in participants
    ]


class _SharedTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    """Sends through the adapter's one transport; a client closing it leaves it open."""

    def __init__(self, inner: AsyncHttpTransport) -> None:  # type: ignore[type-arg]
        self._inner = inner

    async def send(self, request: Any, **kwargs: Any) -> Any:
        return await self._inner.send(request, **kwargs)

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> _SharedTransport:
        await self.open()
        return self

    async def __aexit__(self, *args: object) -> None:
        pass

    async def sleep(self, duration: float) -> None:
        await self._inner.sleep(duration)
