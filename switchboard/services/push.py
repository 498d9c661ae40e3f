"""Push: the devices users register for the controller's pushes, the pushes themselves, and the
ACS call events that tell the registry when a call really ended.

Storage: one document per user, `devices/{userId}` id `devices`, listing the user's
installations (client installation id → platform, registration time) — never the push channel,
which only the hub keeps. One document rather than one per device so the 10-device limit holds
under concurrent registrations (the write is conditional on the etag of the read).

The hub knows each device by an installation id derived from the user and the client's own id
(`hub_installation_id`), tagged with the user's tag (`user_tag`, a digest): two users sending
the same installation id address two installations, so nobody can take over or remove another
user's device, and neither user ids nor client ids reach the hub.

Fan-out (a club's call started, `call_started`, a ClubObserver method): the members' user
tags, OR-ed 20 to a send (the hub's limit for an OR expression), sent in the background so the
registration answers at once. Users without a device match no installation and cost nothing but
their share of a send. A club of 10,000 is 500 sends, `SEND_CONCURRENCY` at a time; see the
README for the measured figures and why per-club tags were not used (every membership change
would have to rewrite up to 10 installations, and a missed rewrite would push a club's call
id to a former member).

The background work runs on the process's event loop after the response (under the Functions
host as under the devserver); a process recycled mid fan-out loses the rest, which the README
states. A queue (Storage queue trigger) would make it durable at the cost of one more resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, cast

from switchboard import errors, ids
from switchboard.logs import safe
from switchboard.ports import (
    MAX_TAGS_PER_SEND,
    Doc,
    DocumentExists,
    DocumentStore,
    PreconditionFailed,
    PushInstallation,
    PushInstallationNotFound,
    PushMessage,
    PushRejected,
    PushSender,
)
from switchboard.services.caller import Caller
from switchboard.services.identity import USERS

log = logging.getLogger("switchboard.push")

DEVICES = "devices"
DEVICES_DOC_ID = "devices"
MAX_DEVICES_PER_USER = 10
SEND_CONCURRENCY = 8
_WRITE_ATTEMPTS = 3


class DeviceEntry(TypedDict):
    platform: str
    registeredAt: str


class DevicesDoc(TypedDict):
    """`devices/{userId}` id `devices`: the installations one user registered."""

    id: str
    pk: str
    userId: str
    installations: dict[str, DeviceEntry]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


def user_tag(user_id: str) -> str:
    """The hub tag of a user's installations: a digest, so the hub never learns user ids."""
    return "u:" + hashlib.sha256(user_id.encode()).hexdigest()[:40]


def hub_installation_id(user_id: str, installation_id: str) -> str:
    """The hub's id for one user's device: the same client id of two users gives two ids."""
    digest = hashlib.sha256(f"{user_id}\x00{installation_id}".encode()).hexdigest()
    return f"sb-{digest[:48]}"


def tag_batches(user_ids: Iterable[str]) -> list[list[str]]:
    """User tags in sends of at most MAX_TAGS_PER_SEND, each user once."""
    tags = [user_tag(u) for u in dict.fromkeys(user_ids)]
    return [tags[i : i + MAX_TAGS_PER_SEND] for i in range(0, len(tags), MAX_TAGS_PER_SEND)]


@dataclass(frozen=True, slots=True)
class FanOutResult:
    """What one fan-out did (tests and the benchmark)."""

    recipients: int
    sends: int
    failed_sends: int


class CallIndexDoc(TypedDict):
    """`system/groupCall:{groupCallId}` id `{clubId}`: which club registered a group call, when.

    ACS call events name the group call, not the club; this index (one single-partition query)
    is how a `CallEnded` finds the clubs to clear without a cross-partition query.
    """

    id: str
    pk: str
    type: str
    groupCallId: str
    clubId: str
    registeredAt: str
    _etag: NotRequired[str]
    _ts: NotRequired[int]


SYSTEM = "system"


def call_index_pk(group_call_id: str) -> str:
    return f"groupCall:{group_call_id.lower()}"


MembersOf = Callable[[str], AsyncIterable[str]]
"""Every member's user id of a club, paged by the clubs capability."""


class PushService:
    """Devices (register, remove, erase) and the controller's pushes."""

    def __init__(
        self,
        store: DocumentStore,
        sender: PushSender | None,
        *,
        members_of: MembersOf | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._sender = sender
        self._members_of = members_of
        self._clock = clock
        self._background: set[asyncio.Task[Any]] = set()

    # -- devices -------------------------------------------------------------------------------

    async def register_device(
        self, caller: Caller, installation_id: str, platform: str, push_channel: str
    ) -> None:
        """Register (or refresh) one of the caller's devices: one store write, one hub call.

        A device whose platform is unchanged only gets its push channel patched in the hub (no
        store write at all). A new device over the limit is refused (409 `device_limit`). When
        the hub fails, the store write is undone (best effort) and the caller gets the 503.
        """
        self._hub()  # 404 push_not_configured before anything is written
        user_id = caller.user_id
        hub_id = hub_installation_id(user_id, installation_id)
        for _ in range(_WRITE_ATTEMPTS):
            doc = await self._read(user_id)
            known = doc["installations"].get(installation_id) if doc else None
            if known is not None and known["platform"] == platform:
                await self._patch_or_put(hub_id, platform, push_channel, user_id)
                return
            entries = dict(doc["installations"]) if doc else {}
            if known is None and len(entries) >= MAX_DEVICES_PER_USER:
                raise errors.DeviceLimitReached(
                    f"A user registers at most {MAX_DEVICES_PER_USER} devices; remove one first."
                )
            entries[installation_id] = {
                "platform": platform,
                "registeredAt": self._clock().isoformat(),
            }
            try:
                written = await self._write(user_id, doc, entries)
            except (PreconditionFailed, DocumentExists):
                continue  # a concurrent registration of the same user: read again
            try:
                await self._put(hub_id, platform, push_channel, user_id)
            except (errors.DependencyUnavailable, errors.InvalidInput, PushRejected) as exc:
                # InvalidInput: the hub refused the push channel; the caller's bad input
                # changes nothing either.
                await self._undo(user_id, written, installation_id, known)
                if isinstance(exc, PushRejected):
                    raise errors.DependencyUnavailable("push", retry_after=60) from None
                raise
            return
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def remove_device(self, caller: Caller, installation_id: str) -> None:
        """Remove one of the caller's devices; removing an unknown one changes nothing.

        The hub goes first: if it fails nothing changed and the caller retries; if the store
        write fails after it, the device is still listed and the retry deletes it again.
        """
        user_id = caller.user_id
        for _ in range(_WRITE_ATTEMPTS):
            doc = await self._read(user_id)
            if doc is None or installation_id not in doc["installations"]:
                return
            await self._delete_in_hub(hub_installation_id(user_id, installation_id))
            entries = {k: v for k, v in doc["installations"].items() if k != installation_id}
            try:
                await self._write(user_id, doc, entries)
                return
            except (PreconditionFailed, DocumentExists):
                continue
        raise errors.DependencyUnavailable("store", retry_after=1)

    async def purge_user(self, user_id: str) -> None:
        """UserDataOwner: every device of the user removed from the hub, then the document."""
        doc = await self._read(user_id)
        if doc is None:
            return
        await asyncio.gather(
            *(
                self._delete_in_hub(hub_installation_id(user_id, installation_id))
                for installation_id in doc["installations"]
            )
        )
        await self._store.delete(DEVICES, user_id, DEVICES_DOC_ID)

    async def devices(self, user_id: str) -> dict[str, DeviceEntry]:
        """The user's registered devices (tests and tools)."""
        doc = await self._read(user_id)
        return dict(doc["installations"]) if doc else {}

    # -- pushes ----------------------------------------------------------------------------------

    # -- ClubObserver: a push when a club's call starts ---------------------------------------

    async def member_added(self, club_id: str, user_id: str) -> None:
        """Nothing to do: pushes address users, not clubs (no per-club tags to keep in step)."""

    async def member_removed(self, club_id: str, user_id: str) -> None:
        """Nothing to do (see member_added): a removed member is simply not in the next fan-out."""

    async def club_deleted(self, club_id: str, member_ids: Sequence[str]) -> None:
        """Nothing to do (see member_added)."""

    async def call_started(
        self,
        club_id: str,
        club_name: str,
        group_call_id: str,
        started_by: str,
        member_ids: Sequence[str] | None,
    ) -> None:
        """A club's call was registered: index it for ACS call events, and push every other
        member that it started — all in the background, so the registration answers at once,
        with no more store operations than without pushes, and never sees a push failure."""
        registered_at = self._clock()
        self.in_background(
            self._club_call(
                club_id, club_name, group_call_id, started_by, member_ids, registered_at
            )
        )

    async def _club_call(
        self,
        club_id: str,
        club_name: str,
        group_call_id: str,
        started_by: str,
        member_ids: Sequence[str] | None,
        registered_at: datetime,
    ) -> FanOutResult:
        gid = group_call_id.lower()
        index: CallIndexDoc = {
            "id": club_id,
            "pk": call_index_pk(gid),
            "type": "groupCall",
            "groupCallId": gid,
            "clubId": club_id,
            "registeredAt": registered_at.isoformat(),
        }
        try:
            await self._store.upsert(SYSTEM, cast(Doc, index))
        except errors.DependencyUnavailable:
            # Without the index a CallEnded cannot find the club: CALL_IDLE_HOURS still ends it.
            log.warning("could not index a club's call for ACS call events")
        if self._sender is None:
            return FanOutResult(0, 0, 0)  # pushes off (Azure without a hub); the index still helps
        if member_ids is None:
            if self._members_of is None:
                return FanOutResult(0, 0, 0)
            member_ids = [u async for u in self._members_of(club_id)]
        recipients = [u for u in member_ids if u != started_by]
        if not recipients:
            return FanOutResult(0, 0, 0)
        starter = await self._store.read(USERS, started_by, started_by)
        name = str(starter.get("displayName") or started_by) if starter else started_by
        message = PushMessage(
            title=f"{name} started a call",
            body=f"in {club_name}",
            data={
                "kind": "clubCall",
                "clubId": club_id,
                "groupCallId": gid,
                "startedBy": started_by,
                "startedByName": name,
            },
        )
        return await self.fan_out(message, recipients)

    async def fan_out(self, message: PushMessage, user_ids: Sequence[str]) -> FanOutResult:
        """Send `message` to the devices of `user_ids`, 20 users a send, a few sends at a time.

        A failed send is logged and counted, never raised: one bad batch must not stop the rest.
        """
        sender = self._sender
        if sender is None:
            return FanOutResult(recipients=0, sends=0, failed_sends=0)
        batches = tag_batches(user_ids)
        gate = asyncio.Semaphore(SEND_CONCURRENCY)
        failed = 0

        async def one(tags: list[str]) -> None:
            nonlocal failed
            async with gate:
                try:
                    await sender.send(message, tags)
                except (errors.DependencyUnavailable, PushRejected) as exc:
                    failed += 1
                    log.warning("push send failed (%s)", type(exc).__name__)

        await asyncio.gather(*(one(b) for b in batches))
        return FanOutResult(
            recipients=len(dict.fromkeys(user_ids)), sends=len(batches), failed_sends=failed
        )

    def in_background(self, work: Awaitable[Any]) -> None:
        """Run `work` after the current request, keeping a reference until it is done; any
        failure is logged, never raised to the request that started it."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("background push work failed")

        task = asyncio.get_running_loop().create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for the background work started so far (tests, the benchmark, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background))

    # -- internals -------------------------------------------------------------------------------

    async def _read(self, user_id: str) -> DevicesDoc | None:
        doc = await self._store.read(DEVICES, user_id, DEVICES_DOC_ID)
        return cast(DevicesDoc, doc) if doc is not None else None

    async def _write(
        self, user_id: str, doc: DevicesDoc | None, entries: dict[str, DeviceEntry]
    ) -> DevicesDoc:
        new: DevicesDoc = {
            "id": DEVICES_DOC_ID,
            "pk": user_id,
            "userId": user_id,
            "installations": entries,
        }
        if doc is None:
            return cast(DevicesDoc, await self._store.create(DEVICES, cast(Doc, new)))
        return cast(DevicesDoc, await self._store.replace(DEVICES, cast(Doc, new), doc["_etag"]))

    async def _undo(
        self,
        user_id: str,
        written: DevicesDoc,
        installation_id: str,
        previous: DeviceEntry | None,
    ) -> None:
        entries = dict(written["installations"])
        if previous is None:
            entries.pop(installation_id, None)
        else:
            entries[installation_id] = previous
        try:
            await self._write(user_id, written, entries)
        except Exception:
            # The device stays listed though the hub lacks it: harmless (a later removal or
            # erase deletes nothing), and the caller's retry registers it for real.
            log.warning("could not undo a device registration after the hub failed")

    def _installation(
        self, hub_id: str, platform: str, channel: str, user_id: str
    ) -> PushInstallation:
        return PushInstallation(
            installation_id=hub_id, platform=platform, push_channel=channel, tag=user_tag(user_id)
        )

    def _hub(self) -> PushSender:
        if self._sender is None:
            raise errors.PushNotConfigured(
                "Pushes are not configured on this server (NOTIFICATION_HUB_CONNECTION_STRING)."
            )
        return self._sender

    async def _put(self, hub_id: str, platform: str, channel: str, user_id: str) -> None:
        await self._hub().put_installation(self._installation(hub_id, platform, channel, user_id))

    async def _patch_or_put(self, hub_id: str, platform: str, channel: str, user_id: str) -> None:
        try:
            await self._hub().update_push_channel(hub_id, channel)
        except PushInstallationNotFound:
            # Listed but not in the hub (an undo that failed, a hub recreated): put it back.
            await self._put(hub_id, platform, channel, user_id)
        except PushRejected:
            raise errors.DependencyUnavailable("push", retry_after=60) from None

    async def _delete_in_hub(self, hub_id: str) -> None:
        if self._sender is None:
            # Registered while a hub was configured: it cannot be reached from here any more.
            log.warning("no push hub configured: a device is removed from the store only")
            return
        try:
            await self._sender.delete_installation(hub_id)
        except PushRejected:
            raise errors.DependencyUnavailable("push", retry_after=60) from None


# -- ACS call events ----------------------------------------------------------------------------

CALL_STARTED = "Microsoft.Communication.CallStarted"
CALL_ENDED = "Microsoft.Communication.CallEnded"


@dataclass(frozen=True, slots=True)
class CallEvent:
    """The part of an ACS calling event the controller uses (Event Grid schema)."""

    event_id: str
    event_type: str
    event_time: datetime | None
    data: Any


EndCall = Callable[[str, str, datetime], Awaitable[bool]]
"""Clear a club's call if it is still that group call, registered before the call ended:
`(club_id, group_call_id, ended_at) -> cleared`."""


class CallEventService:
    """ACS `CallStarted`/`CallEnded` events (Event Grid: at least once, in any order).

    A `CallEnded` of a group call finds, through the call index `PushService.call_started`
    keeps, each club that registered that group call, and clears the club's call if it is still
    that one (`end_call`, the clubs registry's `end_call_if_current`) and was registered before
    the call ended: an old `CallEnded` never clears a newer registration, even of the same id.
    `CallStarted` changes nothing: the registry learns of calls from the clients (PUT
    /api/clubs/{id}/call), and acting on it could revive a call whose `CallEnded` came first.
    Every other event, and every malformed one, is logged and skipped: one event never fails
    the batch. Without events the registry's CALL_IDLE_HOURS still ends calls.
    """

    def __init__(self, store: DocumentStore, end_call: EndCall | None) -> None:
        self._store = store
        self._end_call = end_call

    async def handle(self, event: CallEvent) -> str:
        """Handle one event; returns what was done ("cleared N", "ignored", "skipped")."""
        if event.event_type == CALL_STARTED:
            return "ignored"
        if event.event_type != CALL_ENDED:
            log.info("call event of type %s skipped", safe(event.event_type, 80))
            return "skipped"
        group_call_id = _group_call_id(event.data)
        if group_call_id is None:
            # A two-party or rooms call, or a malformed event: nothing of ours.
            log.info("CallEnded %s without a group call id skipped", safe(event.event_id, 80))
            return "skipped"
        if event.event_time is None:
            log.warning("CallEnded %s without an eventTime skipped", safe(event.event_id, 80))
            return "skipped"
        ended_at = event.event_time
        if ended_at.tzinfo is None:
            ended_at = ended_at.replace(tzinfo=UTC)
        cleared = 0
        continuation: str | None = None
        while True:
            page = await self._store.query(
                SYSTEM, call_index_pk(group_call_id), limit=100, continuation=continuation
            )
            for doc in page.items:
                cleared += await self._ended(cast(CallIndexDoc, doc), ended_at)
            continuation = page.continuation
            if continuation is None:
                return f"cleared {cleared}"

    async def _ended(self, index: CallIndexDoc, ended_at: datetime) -> int:
        registered_at = datetime.fromisoformat(index["registeredAt"])
        if registered_at > ended_at:
            return 0  # registered again after this call ended: not ours to clear
        cleared = False
        if self._end_call is not None:
            # The index may be stale (its write after a new registration is in the background
            # and may fail): the registry checks the call's own start time as well.
            cleared = await self._end_call(index["clubId"], index["groupCallId"], ended_at)
        with contextlib.suppress(PreconditionFailed):  # re-registered meanwhile: the newer stays
            await self._store.delete(SYSTEM, index["pk"], index["id"], index.get("_etag"))
        return int(cleared)


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
