"""The RoomsProvider port on ACS Rooms, through the official async SDK
(`azure.communication.rooms.aio.RoomsClient`, REST api-version 2025-03-13).

This module only translates: port calls to SDK calls and SDK failures to the port's exceptions,
through the Azure adapter kit (`adapters.azure`):

- 429, 5xx, connection and timeout errors → `DependencyUnavailable("rooms", retry_after=…)`;
- 401/403 (a wrong key, or a managed identity without its role on the ACS resource) →
  `DependencyUnavailable`, logged as an error that names what to check;
- 404 from a participants update → `RoomNotFound`; 404 from a removal or a delete is success
  (the room is already gone, which is what was wanted).

The SDK sends `Repeatability-Request-Id` on create, so its own retries never make two rooms.
The SDK is imported at first use, so the embedded mode never loads it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from switchboard.adapters import azure as kit
from switchboard.adapters.rooms_local import check_window
from switchboard.ports import RoomNotFound, RoomParticipant

if TYPE_CHECKING:
    from azure.communication.rooms.aio import RoomsClient
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.exceptions import HttpResponseError

logger = logging.getLogger(__name__)

DEPENDENCY = "rooms"
CREDENTIALS_CHECK = (
    "ACS_CONNECTION_STRING, or the managed identity and its role on the ACS resource"
)

_T = TypeVar("_T")


class AzureRoomsProvider:
    """ACS rooms through `RoomsClient` (async), created on first use and reused."""

    def __init__(
        self,
        make_client: Callable[[], RoomsClient],
        *,
        owned_credential: Callable[[], AsyncTokenCredential | None] | None = None,
    ) -> None:
        self._make_client = make_client
        self._owned_credential = owned_credential
        self._client: RoomsClient | None = None

    @classmethod
    def from_settings(
        cls,
        endpoint: str | None,
        connection_string: str | None,
        managed_identity_client_id: str | None,
        **client_kwargs: Any,
    ) -> AzureRoomsProvider:
        """From ACS_CONNECTION_STRING when set, else ACS_ENDPOINT with a managed identity."""
        kwargs = {**kit.ACS_CLIENT_KWARGS, **client_kwargs}
        if connection_string:
            secret = connection_string

            def from_secret() -> RoomsClient:
                from azure.communication.rooms.aio import RoomsClient

                return RoomsClient.from_connection_string(secret, **kwargs)

            return cls(from_secret)
        if not endpoint:
            raise ValueError("ACS_ENDPOINT or ACS_CONNECTION_STRING is required")
        created: list[AsyncTokenCredential] = []
        resource = endpoint

        def from_identity() -> RoomsClient:
            from azure.communication.rooms.aio import RoomsClient

            credential = kit.credential(managed_identity_client_id)
            created.append(credential)
            return RoomsClient(resource, credential, **kwargs)

        return cls(from_identity, owned_credential=lambda: created[0] if created else None)

    # -- RoomsProvider -------------------------------------------------------------------------

    async def create_room(
        self,
        valid_from: datetime,
        valid_until: datetime,
        participants: Sequence[RoomParticipant],
    ) -> str:
        """POST /rooms with the window and the roster."""
        check_window(valid_from, valid_until)
        roster = _sdk_participants(participants)
        room = await self._call(
            "create_room",
            lambda client: client.create_room(
                valid_from=valid_from,
                valid_until=valid_until,
                pstn_dial_out_enabled=False,
                participants=roster,
            ),
        )
        return str(room.id)

    async def add_or_update_participants(
        self, room_id: str, participants: Sequence[RoomParticipant]
    ) -> None:
        """PATCH /rooms/{roomId}/participants (merge-patch: identity → {"role"})."""
        roster = _sdk_participants(participants)
        await self._call(
            "add_or_update_participants",
            lambda client: client.add_or_update_participants(room_id=room_id, participants=roster),
            not_found=_raise_room_not_found,
        )

    async def remove_participants(
        self, room_id: str, communication_user_ids: Sequence[str]
    ) -> None:
        """PATCH /rooms/{roomId}/participants with each identity → null."""
        from azure.communication.rooms import CommunicationUserIdentifier

        if not communication_user_ids:
            return
        people: list[Any] = [CommunicationUserIdentifier(u) for u in communication_user_ids]
        await self._call(
            "remove_participants",
            lambda client: client.remove_participants(room_id=room_id, participants=people),
            not_found=_ignore,
        )

    async def delete_room(self, room_id: str) -> None:
        """DELETE /rooms/{roomId}; 404 means already gone."""
        await self._call(
            "delete_room", lambda client: client.delete_room(room_id), not_found=_ignore
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        await kit.close_client(client, self._owned_credential)

    # -- internals -----------------------------------------------------------------------------

    def _sdk_client(self) -> RoomsClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def _call(
        self,
        operation: str,
        call: Callable[[RoomsClient], Awaitable[_T]],
        *,
        not_found: Callable[[], _T] | None = None,
    ) -> _T:
        from azure.core.exceptions import AzureError

        def on_status(error: HttpResponseError) -> None:
            if error.status_code == 404 and not_found is not None:
                raise _NotFound from None

        try:
            with kit.sdk_errors(
                DEPENDENCY,
                service="ACS Rooms",
                check=CREDENTIALS_CHECK,
                operation=operation,
                on_status=on_status,
                connection_errors=(AzureError,),
                log=logger,
            ):
                return await call(self._sdk_client())
        except _NotFound:
            assert not_found is not None
            return not_found()


class _NotFound(Exception):
    """A 404 the calling operation maps itself."""


def _sdk_participants(participants: Sequence[RoomParticipant]) -> list[Any]:
    from azure.communication.rooms import (
        CommunicationUserIdentifier,
        ParticipantRole,
    )
    from azure.communication.rooms import (
        RoomParticipant as SdkParticipant,
    )

    roles = {"Presenter": ParticipantRole.PRESENTER, "Attendee": ParticipantRole.ATTENDEE}
    return [
        SdkParticipant(
            communication_identifier=CommunicationUserIdentifier(p.communication_user_id),
            role=roles[p.role],
        )
        for p in participants
    ]


def _raise_room_not_found() -> NoReturn:
    raise RoomNotFound("the room does not exist")


def _ignore() -> None:
    return None
