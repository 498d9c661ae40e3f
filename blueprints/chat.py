"""Chat threads: the caller's threads, a pair of friends' direct thread, and what a client needs
to build its ACS chat and calling clients (DESIGN §4 "Chat threads")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.http import Reply, blueprint, route
from switchboard.models.chat import ChatThread, ClientConfig, ThreadPage, ThreadsQuery
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

if TYPE_CHECKING:  # annotations only: the service loads when the runtime builds it
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
async def list_threads(caller: Caller, query: ThreadsQuery) -> ThreadPage:
    page = await get_runtime().chat.list_threads(caller.user_id, query.continuation)
    return ThreadPage(items=[_thread(v) for v in page.items], continuation=page.continuation)


@route(
    bp,
    "PUT",
    "friends/{userId}/thread",
    summary="The caller and an accepted friend's one direct chat thread, created on first use",
    response=ChatThread,
    errors=(404, 503),
)
async def open_direct_thread(caller: Caller, userId: str) -> ChatThread:
    return _thread(await get_runtime().chat.open_direct_thread(caller.user_id, userId))


@route(
    bp,
    "GET",
    "client-config",
    summary="What a client needs to build its ACS ChatClient and CallClient",
    response=ClientConfig,
)
async def client_config(caller: Caller) -> Reply:
    config = get_runtime().chat.client_config()
    body = ClientConfig(
        acs_endpoint=config.acs_endpoint,
        token_scopes=list(config.token_scopes),
        pstn_caller_id=config.pstn_caller_id,
    )
    return Reply(body, headers={"Cache-Control": "private, max-age=300"})


def _thread(view: ThreadView) -> ChatThread:
    return ChatThread(
        thread_id=view.thread_id,
        kind=view.kind,
        topic=view.topic,
        club_id=view.club_id,
        meeting_id=view.meeting_id,
        user_id=view.user_id,
    )
