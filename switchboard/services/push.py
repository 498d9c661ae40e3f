"""Push: the devices users register for the controller's pushes, the pushes themselves, and the
ACS call events that tell the registry when a call really ended.

Storage: one document per user, `devices/{userId}` id `devices`, listing the user's
installations (client installation id → platform, registration time) — never the push channel,
which only the hub keeps. One document rather than one per device so the 10-device limit holds
under concurrent registrations (the write is conditional on the etag of the read).

The hub knows each device by an installation id derived from the user and the client's own id
(`hub_installation_id`), tagged with the user's tag (`user_tag`): two users sending the same
installation id address two installations, so nobody can take over or remove another user's
device, and neither user ids nor client ids reach the hub.

The user tag is a keyed hash, HMAC-SHA256(tag key, user id), not a plain one: sha256("bob") is
recomputed by anyone who can guess "bob" and reads the hub's tags (the hub's other rights
holders, ACS, whoever gets a Listen key), and then names Bob's devices and pushes. The key is 32
random bytes the server makes on first use and keeps in the store (`system/pushTagKey`), never
in the hub, a setting or a log. Chosen over a random per-user tag kept with the devices because
a fan-out then needs no store read per recipient (a 10,000-member club stays 500 sends and no
reads) and the key needs no setting or Key Vault secret; an erased user's installations are
deleted from the hub, and without the key their tag names nobody. Each device entry records
which key its installation was tagged with (`tagKey`, a fingerprint), so a device registered
under an older tag (the plain hash, or a replaced key) is re-put with its new tag the next time
it registers, instead of only having its push channel patched.

Fan-out (`fan_out`): the users' tags, OR-ed 20 to a send (the hub's limit for an OR
expression), a few sends at a time. Users without a device match no installation and cost nothing
but their share of a send. The club-call pushes are streamed page by page into it by the calls
capability's reconciler (services/calls.py), which keeps the cursor; see docs/push.md for why
per-club tags were not used (every membership change would have to rewrite up to 10
installations, and a missed rewrite would push a club's call id to a former member).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NotRequired, TypedDict, cast

from switchboard import errors, telemetry
from switchboard.ports import (
    MAX_TAGS_PER_SEND,
    Doc,
    DocumentExists,
    DocumentStore,
    PreconditionFailed,
    PushInstallation,
    PushInstallationNotFound,
    PushMessage,
    PushOutbox,
    PushRejected,
    PushSender,
)
from switchboard.services.caller import Caller

log = logging.getLogger("switchboard.push")

DEVICES = "devices"
DEVICES_DOC_ID = "devices"
MAX_DEVICES_PER_USER = 10
SEND_CONCURRENCY = 8
_WRITE_ATTEMPTS = 3


class DeviceEntry(TypedDict):
    platform: str
    registeredAt: str
    tagKey: NotRequired[str]  # `key_fingerprint` of the key the installation's tag came from


class TagKeyDoc(TypedDict):
    """`system/pushTagKey` id `pushTagKey`: the key of the user tags (hex), made once."""

    id: str
    pk: str
    key: str


class DevicesDoc(TypedDict):
    """`devices/{userId}` id `devices`: the installations one user registered."""

    id: str
    pk: str
    userId: str
    installations: dict[str, DeviceEntry]
    _etag: NotRequired[str]
    _ts: NotRequired[int]


SYSTEM = "system"  # the controller's own records: here, the tag key
TAG_KEY_ID = "pushTagKey"


def user_tag(key: bytes, user_id: str) -> str:
    """The hub tag of a user's installations: keyed, so the hub cannot tell whose it is."""
    return "u:" + hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:40]


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"switchboard-push-tag-key\x00" + key).hexdigest()[:16]


def hub_installation_id(user_id: str, installation_id: str) -> str:
    """The hub's id for one user's device: the same client id of two users gives two ids."""
    digest = hashlib.sha256(f"{user_id}\x00{installation_id}".encode()).hexdigest()
    return f"sb-{digest[:48]}"


def tag_batches(key: bytes, user_ids: Iterable[str]) -> list[list[str]]:
    """User tags in sends of at most MAX_TAGS_PER_SEND, each user once."""
    tags = [user_tag(key, u) for u in dict.fromkeys(user_ids)]
    return [tags[i : i + MAX_TAGS_PER_SEND] for i in range(0, len(tags), MAX_TAGS_PER_SEND)]


@dataclass(frozen=True, slots=True)
class FanOutResult:
    """What one fan-out did (tests and the benchmark)."""

    recipients: int
    sends: int
    failed_sends: int


class PushService:
    """Devices (register, remove, erase) and the controller's pushes."""

    def __init__(
        self,
        store: DocumentStore,
        sender: PushSender | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._sender = sender
        self._clock = clock
        self._tag_key: bytes | None = None

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
        fingerprint = key_fingerprint(await self._key())
        for _ in range(_WRITE_ATTEMPTS):
            doc = await self._read(user_id)
            known = doc["installations"].get(installation_id) if doc else None
            if (
                known is not None
                and known["platform"] == platform
                and known.get("tagKey") == fingerprint
            ):
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
                "tagKey": fingerprint,
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
        """UserDataOwner: every device of the user removed from the hub, then the document; the
        dev outbox (local hub only) drops the user's part of what it kept."""
        doc = await self._read(user_id)
        hub_ids = [hub_installation_id(user_id, i) for i in (doc["installations"] if doc else {})]
        if doc is not None:
            await asyncio.gather(*(self._delete_in_hub(hub_id) for hub_id in hub_ids))
            await self._store.delete(DEVICES, user_id, DEVICES_DOC_ID)
        if isinstance(self._sender, PushOutbox):
            tag = await self.user_tag(user_id)
            await self._sender.forget(tag=tag, user_id=user_id, installation_ids=hub_ids)

    async def devices(self, user_id: str) -> dict[str, DeviceEntry]:
        """The user's registered devices (tests and tools)."""
        doc = await self._read(user_id)
        return dict(doc["installations"]) if doc else {}

    # -- pushes ----------------------------------------------------------------------------------

    async def fan_out(self, message: PushMessage, user_ids: Sequence[str]) -> FanOutResult:
        """Send `message` to the devices of `user_ids`, 20 users a send, a few sends at a time.

        A failed send is logged and counted, never raised: one bad batch must not stop the rest.
        """
        sender = self._sender
        if sender is None:
            return FanOutResult(recipients=0, sends=0, failed_sends=0)
        batches = tag_batches(await self._key(), user_ids)
        gate = asyncio.Semaphore(SEND_CONCURRENCY)
        failed = 0

        async def one(tags: list[str]) -> None:
            nonlocal failed
            async with gate:
                try:
                    await sender.send(message, tags)
                    telemetry.PUSHES_SENT.add(1)
                except (errors.DependencyUnavailable, PushRejected) as exc:
                    failed += 1
                    log.warning("push send failed (%s)", type(exc).__name__)

        await asyncio.gather(*(one(b) for b in batches))
        return FanOutResult(
            recipients=len(dict.fromkeys(user_ids)), sends=len(batches), failed_sends=failed
        )

    async def user_tag(self, user_id: str) -> str:
        """The hub tag of `user_id`'s installations (tests and tools)."""
        return user_tag(await self._key(), user_id)

    # -- internals -------------------------------------------------------------------------------

    async def _key(self) -> bytes:
        """The user tags' key: read once per process; made (32 random bytes) on first use, the
        first writer winning a race so every instance tags alike."""
        if self._tag_key is None:
            for _ in range(_WRITE_ATTEMPTS):
                doc = await self._store.read(SYSTEM, TAG_KEY_ID, TAG_KEY_ID)
                if doc is not None:
                    self._tag_key = bytes.fromhex(str(doc["key"]))
                    break
                made: TagKeyDoc = {"id": TAG_KEY_ID, "pk": TAG_KEY_ID, "key": secrets.token_hex(32)}
                try:
                    await self._store.create(SYSTEM, cast(Doc, made))
                except DocumentExists:
                    continue
                self._tag_key = bytes.fromhex(made["key"])
                break
            else:
                raise errors.DependencyUnavailable("store", retry_after=1)
        return self._tag_key

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

    async def _installation(
        self, hub_id: str, platform: str, channel: str, user_id: str
    ) -> PushInstallation:
        return PushInstallation(
            installation_id=hub_id,
            platform=platform,
            push_channel=channel,
            tag=user_tag(await self._key(), user_id),
        )

    def _hub(self) -> PushSender:
        if self._sender is None:
            raise errors.PushNotConfigured(
                "Pushes are not configured on this server (NOTIFICATION_HUB_CONNECTION_STRING)."
            )
        return self._sender

    async def _put(self, hub_id: str, platform: str, channel: str, user_id: str) -> None:
        await self._hub().put_installation(
            await self._installation(hub_id, platform, channel, user_id)
        )

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
