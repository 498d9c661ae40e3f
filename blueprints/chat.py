"""Chat threads: the caller's threads, a pair of friends' direct thread, and what a client needs
to build its ACS chat and calling clients (docs/chat.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.http import Reply, blueprint, route
from switchboard.models.chat import ChatThread, ClientConfig, ThreadPage, ThreadsQuery
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

if TYPE_CHECKING:  # annotations only: the service loads when the runtime builds it
    from switchboard.services.chat import ThreadPage as ThreadPageView
    from switchboard.services.chat import ThreadView

bp = blueprint("chat")


@route(
    bp,
    "GET",
    "threads",
    summary="The caller's chat threads of every kind (club, direct, meeting), newest first",
    query=ThreadsQuery,
    response=ThreadPage,
)
async def list_threads(caller: Caller, query: ThreadsQuery) -> ThreadPageView:
    return await get_runtime().chat.list_threads(
        caller.user_id, query.continuation, query.page_size
    )


@route(
    bp,
    "PUT",
    "friends/{userId}/thread",
    summary="The caller and an accepted friend's one direct chat thread, created on first use",
    response=ChatThread,
    errors=(404, 503),
)
async def open_direct_thread(caller: Caller, userId: str) -> ThreadView:
    return await get_runtime().chat.open_direct_thread(caller.user_id, userId)


@route(
    bp,
    "GET",
    "client-config",
    summary="What a client needs to build its ACS ChatClient and CallClient",
    response=ClientConfig,
)
async def client_config(caller: Caller) -> Reply:
    config = get_runtime().chat.client_config()
    return Reply(config, headers={"Cache-Control": "private, max-age=300"})
