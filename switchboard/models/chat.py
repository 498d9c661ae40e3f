"""Wire models of the chat capability: the caller's threads, a direct thread, client config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from switchboard.models import ApiModel, Page, PageQuery


class ThreadsQuery(PageQuery):
    page_size: int = Field(50, ge=1, le=100, description="Items per page (default 50).")


class ChatThread(ApiModel):
    """A chat thread the caller is in; ids that do not apply to its kind are null."""

    thread_id: str | None = Field(
        description="The ACS chat thread id (null for a meeting whose chat is not known yet)."
    )
    kind: Literal["club", "direct", "meeting"]
    topic: str
    club_id: str | None = None
    meeting_id: str | None = None
    user_id: str | None = Field(None, description="For a direct thread: the other friend.")


class ThreadPage(Page[ChatThread]):
    pass


class ClientConfig(ApiModel):
    """What a client needs to build its ACS ChatClient and CallClient."""

    acs_endpoint: str = Field(
        description="The ACS resource endpoint; `local://embedded` when the server runs on its "
        "embedded adapters (no ACS resource: the ACS chat and calling SDKs cannot connect)."
    )
    token_scopes: list[str] = Field(description="The scopes POST /api/token may ask for.")
    pstn_caller_id: str | None = Field(
        description="The app's ACS phone number for outbound PSTN calls, if it has one."
    )
