"""The ports: what the services need from the outside world, as `typing.Protocol`s.

Services receive these as constructor arguments and never know which adapter is behind them
(SQLite or Cosmos DB, the local ACS issuer or Azure Communication Services). Each port also
names the exceptions its adapters raise, so services can react to them without importing an SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

Doc = dict[str, Any]
"""A stored JSON document. Always has `id` and `pk`; reads also return `_etag` and `_ts`."""

# Every container the app uses, partition key path `/pk`, with its default TTL in seconds
# (None: no TTL; -1: TTL on, set per document). infra/ declares exactly these; the app never
# creates containers at run time. Cosmos DB and the SQLite store remove a document `ttl` seconds
# after its last write (the SQLite store: invisible at once, deleted from the file within a
# minute); the services still enforce expiry in code by timestamp, because the local
# Cosmos-protocol test server does not expire documents.
CONTAINERS: Mapping[str, int | None] = {
    "users": -1,  # profiles keep no ttl; the token-budget records (tokens:<userId>) expire
    "identities": None,
    "friends": None,
    "clubs": None,
    "memberships": None,
    "meetings": None,
    "agenda": None,
    "phone": -1,
    "invites": -1,
    "threads": None,
    "devices": None,
    "system": None,
    # Durable follow-up work (services/reactions.py); drained by the change feed in Azure.
    "work": None,
}


class StoreError(Exception):
    """Base of the DocumentStore's own exceptions."""


class DocumentNotFound(StoreError):
    """The document does not exist (replace/delete of a missing document)."""


class DocumentExists(StoreError):
    """`create` of a document whose id already exists in that partition."""


class PreconditionFailed(StoreError):
    """`replace`/`delete` with an etag that is no longer the document's current one."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query: the documents and the token that continues it (None at the end)."""

    items: list[Doc]
    continuation: str | None


class DocumentStore(Protocol):
    """A document store with Cosmos DB (NoSQL) semantics; every container is partitioned on /pk.

    Adapters: `adapters.sqlite_store.SqliteStore`, `adapters.cosmos_store.CosmosStore`; both pass
    `tests/contract/test_document_store.py`, which is the precise statement of this contract.
    Rules common to every operation:
    - an unknown container, a non-string pk, an id that is empty, longer than 255 characters or
      holds one of `/ \\ ? #`, a field name that is not a plain identifier: `ValueError`;
    - documents come back with their own fields plus `_etag` (opaque) and `_ts` (epoch seconds),
      nothing else; system fields sent in (say, a document as read) are ignored on write;
    - the store down, throttling or unreachable: `errors.DependencyUnavailable("store")`.
    """

    async def read(self, container: str, pk: str, id: str) -> Doc | None:
        """The document, or None when it does not exist."""
        ...

    async def read_many(self, container: str, keys: Sequence[tuple[str, str]]) -> list[Doc]:
        """Many documents by (pk, id) in one call (Cosmos ReadMany); missing ones are left out.

        Results follow the order of `keys`, each document once even if its key repeats.
        """
        ...

    async def create(self, container: str, doc: Doc) -> Doc:
        """Insert; raises DocumentExists when (pk, id) exists."""
        ...

    async def replace(self, container: str, doc: Doc, etag: str) -> Doc:
        """Replace when `etag` is current; PreconditionFailed if stale, DocumentNotFound if gone."""
        ...

    async def upsert(self, container: str, doc: Doc) -> Doc:
        """Insert or replace, unconditionally."""
        ...

    async def delete(self, container: str, pk: str, id: str, etag: str | None = None) -> bool:
        """Delete; False when it did not exist. With `etag`, PreconditionFailed if stale."""
        ...

    async def query(
        self,
        container: str,
        pk: str,
        *,
        where: Mapping[str, str | int | float | bool | None] | None = None,
        order_by: str | None = None,
        descending: bool = False,
        start_at: str | int | float | None = None,
        end_before: str | int | float | None = None,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        """Documents of one partition matching top-level equality filters, in order, paged.

        - `where`: field == value, all of them. A value of None matches a field that is null
          *or absent*. Values compare with their JSON type: True is not 1, "1" is not 1.
        - `order_by`: one top-level field. Give every document the query should return that
          field (null if need be): Cosmos DB returns documents without it (first when ascending),
          but the local Cosmos-protocol test server leaves them out. Values of one type only
          (SQLite orders booleans among numbers). Without `order_by` the order is unspecified.
        - `start_at`, `end_before`: a range on the `order_by` field (required with them, else
          ValueError): `start_at <= field < end_before`, either bound optional, both of one JSON
          type (strings or numbers); documents whose field is absent, null or of another type
          are left out. With a range the query reads only that range of the order (one bounded
          index range on both stores), however many documents lie outside it.
        - `limit`: at most this many items per page, 1..1000 (else ValueError); a shorter page
          does not mean the end.
        - `continuation`: the previous page's token, opaque and URL-safe; None on the last page
          (which may be empty). A token that is not one (or is from another ordering) raises
          `errors.InvalidInput`.
        """
        ...

    async def count(
        self,
        container: str,
        pk: str,
        *,
        where: Mapping[str, str | int | float | bool | None] | None = None,
        where_not: Mapping[str, str | int | float | bool | None] | None = None,
    ) -> int:
        """How many documents of one partition match `where` and none of `where_not`.

        One operation, whatever the count (Cosmos: `SELECT VALUE COUNT(1)`, served from the
        index; SQLite: one statement over the shape's index), never the documents themselves.
        `where` as in `query`; `where_not`: field == value (same typed equality, None = null or
        absent) leaves a document out, so a document whose field is absent or of another type
        is counted.
        """
        ...

    async def ping(self) -> None:
        """Raise DependencyUnavailable unless every container of CONTAINERS is reachable now.

        Health calls this on every probe, so it is one round of cheap reads (concurrent, never
        one after another) and it logs, in one line, any container that is missing. A store whose
        containers cannot go missing on their own (SQLite: rows of one table) checks the store.
        """
        ...

    async def close(self) -> None:
        """Release connections (end of process or of a test)."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An ACS user access token and when it expires (the SDK's AccessToken, made explicit)."""

    token: str
    expires_on: datetime


class IdentityNotFound(Exception):
    """The ACS identity no longer exists (deleted), so no token can be issued for it."""


class TeamsTokenRejected(Exception):
    """ACS refused a Teams user's Entra token (invalid, expired, for another app or tenant)."""


class IdentityProvider(Protocol):
    """The ACS Identity service: identities and their user access tokens."""

    async def create_user_and_token(
        self, scopes: Sequence[str], expires_in: timedelta
    ) -> tuple[str, IssuedToken]:
        """A new identity and its first token in one call; returns (communicationUserId, token)."""
        ...

    async def issue_token(
        self, communication_user_id: str, scopes: Sequence[str], expires_in: timedelta
    ) -> IssuedToken:
        """A token for an existing identity; raises IdentityNotFound if it was deleted."""
        ...

    async def revoke_tokens(self, communication_user_id: str) -> None:
        """Every token issued to the identity so far stops working."""
        ...

    async def delete_user(self, communication_user_id: str) -> None:
        """Delete the identity (and with it its tokens); deleting a missing one is not an error."""
        ...

    async def exchange_teams_token(
        self, aad_token: str, client_id: str, user_object_id: str
    ) -> IssuedToken:
        """An ACS token for a Teams user from their Entra token; TeamsTokenRejected if refused."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# --- chat ---------------------------------------------------------------------------------------

# ACS Chat limits (service-limits): a thread holds at most 250 participants, its creator
# included; one add call carries at most 200.
MAX_THREAD_PARTICIPANTS = 250
MAX_PARTICIPANTS_PER_ADD = 200


@dataclass(frozen=True, slots=True)
class ChatParticipant:
    """Someone the controller puts in a thread: their ACS identity and the name others see."""

    communication_user_id: str
    display_name: str


class ChatThreadNotFound(Exception):
    """The thread does not exist (deleted, or never created on this ACS resource)."""


class ChatThreadFull(Exception):
    """Adding these participants would take the thread past MAX_THREAD_PARTICIPANTS."""


class ChatProvider(Protocol):
    """The ACS Chat service as the controller uses it: threads it owns and who is in them.

    The controller acts as one ACS user of its own (its service identity), which creates every
    thread and so is a participant of each; clients send and read messages with ACS directly.
    Adapters: `adapters.chat_local.LocalChatProvider`, `adapters.chat_azure.AzureChatProvider`.
    Throttling and outages raise `errors.DependencyUnavailable("chat", retry_after=…)`.
    """

    async def create_thread(
        self, topic: str, participants: Sequence[ChatParticipant], *, idempotency_token: str
    ) -> str:
        """A new thread with these participants (and the creator); returns its id.

        The same `idempotency_token` again returns the same thread, never a second one.
        At most MAX_PARTICIPANTS_PER_ADD participants (ValueError beyond).
        """
        ...

    async def add_participants(
        self, thread_id: str, participants: Sequence[ChatParticipant]
    ) -> None:
        """Add participants (those already in it are left as they are).

        ChatThreadNotFound if the thread is gone; ChatThreadFull, adding nobody, when the thread
        would pass MAX_THREAD_PARTICIPANTS; ValueError beyond MAX_PARTICIPANTS_PER_ADD.
        """
        ...

    async def remove_participant(self, thread_id: str, communication_user_id: str) -> None:
        """Remove one participant; a participant or thread already gone is not an error."""
        ...

    async def list_participants(self, thread_id: str) -> list[str]:
        """The communicationUserIds in the thread, as the chat service itself knows them (all
        pages), the controller's own service identity left out; ChatThreadNotFound if gone."""
        ...

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread for everyone; deleting a missing thread is not an error."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class OnlineMeeting:
    """A meeting as the meeting provider knows it (Graph's onlineMeeting, or a local one)."""

    provider_meeting_id: str
    join_url: str
    thread_id: str | None
    join_meeting_id: str | None
    passcode: str | None


class MeetingProvider(Protocol):
    """Who schedules online meetings: Microsoft Graph (Teams) or the local recorder.

    `name` is the meeting's `provider` in the API ("graph" or "local"). Failures are
    `errors.DependencyUnavailable` (or its `GraphAccessPolicyMissing`); nothing else is raised
    for a dependency being down or refusing.
    """

    name: str

    async def create_meeting(
        self, *, external_id: str, subject: str, start: datetime, end: datetime
    ) -> OnlineMeeting:
        """Create the meeting, or return the one already made with this `external_id`: a retried
        request never makes two."""
        ...

    async def find_by_join_meeting_id(self, join_meeting_id: str) -> OnlineMeeting | None:
        """The organizer's meeting with this Teams meeting ID (the short link's id), or None."""
        ...

    async def delete_meeting(self, provider_meeting_id: str) -> None:
        """Cancel the meeting; one already gone is not an error."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# -- push ---------------------------------------------------------------------------------------

PUSH_PLATFORMS = ("apns", "fcmv1")
"""The push services a device may register with: Apple (APNs) and Firebase Cloud Messaging v1."""

MAX_TAGS_PER_SEND = 20
"""Notification Hubs evaluates a tag expression of ORs over at most 20 tags: one send reaches
the devices of at most 20 users."""


PUSH_DATA_KEYS = ("kind", "clubId", "groupCallId", "startedBy", "startedByName")
"""The data a push may carry for the app, beside its title and body. A closed set, because the
hub's templates name each property they place (`$(groupCallId)`)."""


@dataclass(frozen=True, slots=True)
class PushInstallation:
    """One device as the push hub knows it.

    `installation_id` is the hub's id (the service derives it from the user and the device's own
    id, so two users can never address each other's installations); `tag` names the user (a
    digest, not the user id); `push_channel` is the APNs device token or the FCM registration
    token — a credential of sorts, never logged nor stored by the service.
    """

    installation_id: str
    platform: str  # one of PUSH_PLATFORMS
    push_channel: str
    tag: str


@dataclass(frozen=True, slots=True)
class PushMessage:
    """What one push says, as flat string properties (a Notification Hubs template send).

    `title` and `body` are shown by the operating system; `data` is for the app, its keys from
    PUSH_DATA_KEYS (others: ValueError).
    """

    title: str
    body: str
    data: Mapping[str, str]


class PushInstallationNotFound(Exception):
    """The hub has no installation with that id (a PATCH of a missing installation)."""


class PushRejected(Exception):
    """The hub refused a send for good (quota exceeded, message too large): retrying won't help."""


class PushSender(Protocol):
    """A push hub (Azure Notification Hubs, or the local outbox): device installations and sends
    to tag expressions. Dependency trouble (throttling, 5xx, refused credentials) raises
    `errors.DependencyUnavailable("push")`.
    """

    async def put_installation(self, installation: PushInstallation) -> None:
        """Create or overwrite the installation (idempotent)."""
        ...

    async def update_push_channel(self, installation_id: str, push_channel: str) -> None:
        """Replace only the push channel of an existing installation (the device's new token);
        `PushInstallationNotFound` when the hub does not have it."""
        ...

    async def delete_installation(self, installation_id: str) -> None:
        """Remove the installation; a missing one is not an error."""
        ...

    async def send(self, message: PushMessage, tags: Sequence[str]) -> None:
        """Push `message` to every installation carrying any of `tags` (1..MAX_TAGS_PER_SEND).

        Raises `PushRejected` when the hub refuses the message for good.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class SmsSendResult:
    """What the SMS service said about one recipient of one send.

    `accepted` False is a failed message, not an exception: the service refused this recipient
    (`status_code` is its per-recipient HTTP status, `error` its short reason, never the number).
    `message_id` is the service's id, which delivery reports name; it may be absent on failure.
    """

    message_id: str | None
    accepted: bool
    status_code: int
    error: str | None = None


class SmsSender(Protocol):
    """Sends SMS from the app's number: ACS SMS in Azure, a persistent outbox in development."""

    async def send(self, to: str, message: str, *, tag: str) -> SmsSendResult:
        """Send `message` to one E.164 number with a delivery report asked for, tagged `tag`
        (the purpose: "verification", "invite"). The service down, throttling or refusing our
        credentials: `errors.DependencyUnavailable("sms")`."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# -- rooms --------------------------------------------------------------------------------------

RoomRole = Literal["Presenter", "Attendee"]
"""The ACS Rooms roles Switchboard gives: a club's owner presents, its members attend."""

ROOM_VALIDITY_MAX = timedelta(days=180)
"""ACS Rooms: `validUntil` at most 180 days after `validFrom`."""


@dataclass(frozen=True, slots=True)
class RoomParticipant:
    """One identity on a room's roster and its role."""

    communication_user_id: str
    role: RoomRole


class RoomNotFound(Exception):
    """The room does not exist (deleted, expired and purged, or never created here)."""


class RoomsProvider(Protocol):
    """ACS Rooms as the controller uses them: a room per club call, admitting only its roster.

    A room admits the identities on its roster, in their roles, between `valid_from` and
    `valid_until`; anyone else who knows its id is refused by ACS. Adapters:
    `adapters.rooms_local.LocalRoomsProvider`, `adapters.rooms_azure.AzureRoomsProvider`.
    Throttling and outages raise `errors.DependencyUnavailable("rooms", retry_after=…)`.
    """

    async def create_room(
        self,
        valid_from: datetime,
        valid_until: datetime,
        participants: Sequence[RoomParticipant],
    ) -> str:
        """A new room with this roster; returns its id. ValueError when the window is empty or
        longer than ROOM_VALIDITY_MAX."""
        ...

    async def add_or_update_participants(
        self, room_id: str, participants: Sequence[RoomParticipant]
    ) -> None:
        """Put these identities on the roster (or change their role); RoomNotFound if it is gone."""
        ...

    async def remove_participants(
        self, room_id: str, communication_user_ids: Sequence[str]
    ) -> None:
        """Take identities off the roster; one not on it, or a room already gone, is no error."""
        ...

    async def delete_room(self, room_id: str) -> None:
        """Delete the room; a missing one is not an error."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
