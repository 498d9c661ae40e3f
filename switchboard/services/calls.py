"""Calls: ACS call events, and what follows a club's new call (its index and its pushes).

The clubs registry holds the truth: the club's `call` document (PUT /api/clubs/{id}/call). Two
copies follow it, kept by one reconciler (`reconcile_call`, work kind `call`, recorded by the
registration and by every club change):
- the call index, `system/groupCall:{groupCallId}` id `{clubId}`: ACS call events name the
  group call, not the club, so a `CallEnded` finds the clubs to clear with one single-partition
  query (no cross-partition query anywhere);
- the pushes to the other members that the call started: a fan-out streamed page by page (100
  members a page, 20 users a send), with its cursor in `system/callPush:{clubId}`, a document
  this reconciler owns. A run sends a few pages and queues itself again, so a club of 10,000 is
  linear in its members, and a process recycled mid fan-out resumes at the cursor. Delivery is at
  least once: a crash between a page's sends and its cursor write sends that page again.
  A call older than PUSH_WINDOW when its fan-out would start pushes no one (late news is noise).

ACS events (Event Grid: at least once, in any order) are parsed at the edge into typed events
(`parse_call_event`): `CallEnded` of a group call clears each club that registered it, if the
club's call is still that one and was registered before the call ended (`end_call_if_current`):
an old `CallEnded` never clears a newer registration, even of the same id. `CallStarted` changes
nothing: the registry learns of calls from the clients, and acting on it could revive a call whose
`CallEnded` came first. An event dated more than FUTURE_TOLERANCE ahead is skipped with a log
line (a forged far-future event must not outrank later real ones), as is anything malformed.
Without events the registry's CALL_IDLE_HOURS still ends calls.

Rooms (`CLUB_CALLS=rooms`) will register a room instead of a group call; the index and the
fan-out are the same, keyed by what the registry reports as the call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NotRequired, Protocol, TypedDict, cast

from switchboard import errors, ids
from switchboard.logs import safe
from switchboard.ports import Doc, DocumentStore, PreconditionFailed, PushMessage
from switchboard.services.clubs import KIND_CALL, ActiveCallInfo
from switchboard.services.documents import KEEP, _Keep, modify
from switchboard.services.hooks import Profiles
from switchboard.services.push import FanOutResult
from switchboard.services.reactions import Work

log = logging.getLogger("switchboard.calls")

SYSTEM = "system"
CALL_STARTED = "Microsoft.Communication.CallStarted"
CALL_ENDED = "Microsoft.Communication.CallEnded"
# Event Grid stamps events when they happen; clocks differ by seconds, not minutes.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Members get the "call started" push only while it is news.
PUSH_WINDOW = timedelta(minutes=10)
PUSH_PAGE = 500
# Pages one run sends before it queues itself again (a run stays short).
PAGES_PER_RUN = 4


# --- typed events (parsed at the edge) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    event_id: str
    event_time: datetime
    group_call_id: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    event_id: str
    event_time: datetime
    group_call_id: str


@dataclass(frozen=True, slots=True)
class SkippedEvent:
    """An event the controller does not act on, and why (for the log line)."""

    event_id: str
    reason: str


CallEvent = CallStarted | CallEnded | SkippedEvent


def parse_call_event(
    event_id: object, event_type: object, event_time: object, data: Any
) -> CallEvent:
    """An Event Grid event's fields as a typed call event; anything else is a SkippedEvent."""
    eid = safe(str(event_id or ""), 80)
    if event_type not in (CALL_STARTED, CALL_ENDED):
        return SkippedEvent(eid, f"type {safe(str(event_type), 80)}")
    group_call_id = _group_call_id(data)
    if group_call_id is None:
        # A two-party or rooms call, or a malformed event: nothing of ours.
        return SkippedEvent(eid, "no group call id")
    if not isinstance(event_time, datetime):
        return SkippedEvent(eid, "no eventTime")
    when = event_time if event_time.tzinfo else event_time.replace(tzinfo=UTC)
    kind = CallStarted if event_type == CALL_STARTED else CallEnded
    return kind(eid, when, group_call_id)


def _group_call_id(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    group = data.get("group")
    if not isinstance(group, dict):
        return None
    value = group.get("id")
    if not isinstance(value, str) or not ids.is_valid_id(value):
        return None
    return value.lower()


# --- documents ------------------------------------------------------------------------------


class CallIndexDoc(TypedDict):
    """`system/groupCall:{groupCallId}` id `{clubId}`: which club registered a group call, when."""

    id: str
    pk: str
    type: str
    groupCallId: str
    clubId: str
    registeredAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


class CallPushDoc(TypedDict):
    """`system/callPush:{clubId}`: the fan-out of the club's current call, and its cursor."""

    id: str
    pk: str
    clubId: str
    groupCallId: str
    startedAt: str
    continuation: str | None
    done: bool
    _etag: NotRequired[str]
    _ts: NotRequired[int]


def call_index_pk(group_call_id: str) -> str:
    return f"groupCall:{group_call_id.lower()}"


def _push_key(club_id: str) -> str:
    return f"callPush:{club_id}"


# --- what the calls capability needs of others ----------------------------------------------


class CallRegistry(Protocol):
    """The clubs registry as calls use it (ClubsService implements it)."""

    async def active_call(self, club_id: str) -> ActiveCallInfo | None: ...

    async def member_page(
        self, club_id: str, continuation: str | None, limit: int
    ) -> tuple[list[str], str | None]: ...

    async def end_call_if_current(
        self, club_id: str, group_call_id: str, ended_at: datetime | None = None
    ) -> bool: ...


class Pushes(Protocol):
    """The push capability's send (PushService implements it)."""

    async def fan_out(self, message: PushMessage, user_ids: Sequence[str]) -> FanOutResult: ...


class CallsService:
    """ACS call events and the reconciler that follows a club's call."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        registry: CallRegistry,
        work: Work,
        profiles: Profiles,
        pushes: Pushes | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._registry = registry
        self._work = work
        self._profiles = profiles
        self._pushes = pushes
        self._clock = clock

    # --- events ---------------------------------------------------------------------------------

    async def handle(self, event: CallEvent) -> str:
        """Handle one event; returns what was done ("cleared N", "ignored", "skipped ...")."""
        if isinstance(event, SkippedEvent):
            log.info("call event %s skipped: %s", event.event_id, event.reason)
            return "skipped"
        if event.event_time > self._clock() + FUTURE_TOLERANCE:
            log.warning("call event %s dated in the future, skipped", event.event_id)
            return "skipped"
        if isinstance(event, CallStarted):
            return "ignored"
        cleared = 0
        continuation: str | None = None
        while True:
            page = await self._store.query(
                SYSTEM, call_index_pk(event.group_call_id), limit=100, continuation=continuation
            )
            for doc in page.items:
                cleared += await self._ended(cast(CallIndexDoc, doc), event.event_time)
            continuation = page.continuation
            if continuation is None:
                return f"cleared {cleared}"

    async def _ended(self, index: CallIndexDoc, ended_at: datetime) -> int:
        if datetime.fromisoformat(index["registeredAt"]) > ended_at:
            return 0  # registered again after this call ended: not ours to clear
        # The index is a copy and may be behind: the registry checks the call's own start time.
        cleared = await self._registry.end_call_if_current(
            index["clubId"], index["groupCallId"], ended_at
        )
        with contextlib.suppress(PreconditionFailed):  # re-registered meanwhile: the newer stays
            await self._store.delete(SYSTEM, index["pk"], index["id"], index.get("_etag"))
        if cleared:
            await self._work.now(KIND_CALL, index["clubId"])
        return int(cleared)

    # --- the reconciler ---------------------------------------------------------------------------

    async def reconcile_call(self, club_id: str) -> None:
        """Reconciler (`call`): the index names the club's current call and no older one; the
        other members get the call's push, page by page from the stored cursor."""
        call = await self._registry.active_call(club_id)
        key = _push_key(club_id)
        state = cast(CallPushDoc | None, await self._store.read(SYSTEM, key, key))
        if call is None:
            if state is not None:
                await self._forget_index(state["groupCallId"], club_id, state["startedAt"])
                await self._store.delete(SYSTEM, key, key)
            return
        started_at = call.started_at.isoformat()
        if state is None or (state["groupCallId"], state["startedAt"]) != (
            call.group_call_id,
            started_at,
        ):
            if state is not None and state["groupCallId"] != call.group_call_id:
                await self._forget_index(state["groupCallId"], club_id, state["startedAt"])
            index: CallIndexDoc = {
                "id": club_id,
                "pk": call_index_pk(call.group_call_id),
                "type": "groupCall",
                "groupCallId": call.group_call_id,
                "clubId": club_id,
                "registeredAt": started_at,
            }
            await self._store.upsert(SYSTEM, cast(Doc, index))
            fresh: CallPushDoc = {
                "id": key,
                "pk": key,
                "clubId": club_id,
                "groupCallId": call.group_call_id,
                "startedAt": started_at,
                "continuation": None,
                # Nothing to send: pushes off, or the call is no longer news.
                "done": self._pushes is None or self._clock() - call.started_at > PUSH_WINDOW,
            }
            state = cast(CallPushDoc, await self._store.upsert(SYSTEM, cast(Doc, fresh)))
        if state["done"]:
            return
        message = await self._message(call)
        for _ in range(PAGES_PER_RUN):
            member_ids, continuation = await self._registry.member_page(
                club_id, state["continuation"], PUSH_PAGE
            )
            recipients = [u for u in member_ids if u != call.started_by]
            if recipients and self._pushes is not None:
                result = await self._pushes.fan_out(message, recipients)
                if result.failed_sends:
                    # The cursor stays: this page is sent again on the retry.
                    raise errors.DependencyUnavailable("push", retry_after=30)
            state = await self._advance(state, continuation)
            if state["done"]:
                return
        await self._work.now(KIND_CALL, club_id)  # more pages: the next run goes on

    async def _advance(self, state: CallPushDoc, continuation: str | None) -> CallPushDoc:
        """Move the cursor past a page sent; a newer call's state is left alone (done)."""

        def move(current: Doc | None) -> Doc | _Keep:
            if current is None or (current["groupCallId"], current["startedAt"]) != (
                state["groupCallId"],
                state["startedAt"],
            ):
                return KEEP
            return {**current, "continuation": continuation, "done": continuation is None}

        saved = await modify(self._store, SYSTEM, state["pk"], state["id"], move)
        if saved is None or saved.get("startedAt") != state["startedAt"]:
            return {**state, "done": True}  # a newer call took over: its own run pushes
        return cast(CallPushDoc, saved)

    async def _forget_index(self, group_call_id: str, club_id: str, started_at: str) -> None:
        pk = call_index_pk(group_call_id)
        doc = await self._store.read(SYSTEM, pk, club_id)
        if doc is not None and doc.get("registeredAt") == started_at:
            with contextlib.suppress(PreconditionFailed):
                await self._store.delete(SYSTEM, pk, club_id, doc["_etag"])

    async def _message(self, call: ActiveCallInfo) -> PushMessage:
        starter = call.started_by
        profile = (await self._profiles.get_many([starter])).get(starter) if starter else None
        name = profile.display_name if profile else "A member"
        return PushMessage(
            title=f"{name} started a call",
            body=f"in {call.club_name}",
            data={
                "kind": "clubCall",
                "clubId": call.club_id,
                "groupCallId": call.group_call_id,
                "startedBy": profile.user_id if profile else "",
                "startedByName": name,
            },
        )

    async def purge_user(self, user_id: str) -> None:
        """Nothing to purge: the index and the cursor name no user (the push names the starter
        only while they exist, read fresh from their profile)."""
