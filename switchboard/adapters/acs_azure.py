"""The IdentityProvider port on Azure Communication Services, through the official async SDK
(`azure.communication.identity.aio.CommunicationIdentityClient`).

This module only translates: port calls to SDK calls, scope names to `CommunicationTokenScope`,
and SDK failures to the port's exceptions, through the Azure adapter kit (`adapters.azure`) —

- 429, 5xx, connection and timeout errors → `DependencyUnavailable("acs", retry_after=…)`, with
  the service's Retry-After when it sent one;
- 401/403 (a wrong key, or a managed identity without its role) → `DependencyUnavailable` too,
  since the API caller can do nothing about it, but logged as an error that names the cause;
- 404 from issue-token → `IdentityNotFound`; 404 from delete or revoke is success (already gone);
- the Teams exchange: 400, and 401 `InvalidAccessToken`, refuse the caller's Entra token
  (`TeamsTokenRejected`); any other 401/403 refuses Switchboard's own credentials, a 503 that
  names what to grant (`AcsAccessDenied`), never "your token was refused";
- after a 429 no call reaches ACS until its Retry-After is over (503 at once, `kit.Backoff`), and
  every call is bounded in time (`kit.guarded`).

Azure SDKs are imported at first use, not at import time, so the embedded mode never loads them.
No token, key or connection string ever reaches a log line or an exception message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from switchboard.adapters import azure as kit
from switchboard.errors import AcsAccessDenied
from switchboard.ports import IdentityNotFound, IssuedToken, TeamsTokenRejected

if TYPE_CHECKING:
    from azure.communication.identity import CommunicationTokenScope
    from azure.communication.identity.aio import CommunicationIdentityClient
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.exceptions import HttpResponseError

logger = logging.getLogger(__name__)

DEPENDENCY = "acs"
# What to check when ACS refuses Switchboard's credentials (logged, never the SDK's message).
CREDENTIALS_CHECK = (
    "ACS_CONNECTION_STRING, or the managed identity and its role on the ACS resource"
)
# ACS's code for an Entra token it does not accept on the Teams exchange (expired, malformed,
# another tenant): Azure/azure-sdk-for-js communication-identity recordings
# `recording_throws_an_error_when_attempting_to_exchange_an_invalid_teams_user_aad_token.js`.
TEAMS_TOKEN_REFUSED_CODE = "InvalidAccessToken"  # noqa: S105 (an error code)

# The SDK pipeline's retries unless the caller overrides them (see the kit: no in-request
# sleeping on throttling).
DEFAULT_CLIENT_KWARGS = kit.ACS_CLIENT_KWARGS

_T = TypeVar("_T")


class AzureIdentityProvider:
    """ACS identities and tokens through `CommunicationIdentityClient` (async).

    Build it with `from_settings`, `from_connection_string` or `from_endpoint`. The SDK client
    (and, for `from_settings` without a connection string, the managed-identity credential) is
    created on first use and reused for the life of the process; `close` releases both.
    """

    def __init__(
        self,
        make_client: Callable[[], CommunicationIdentityClient],
        *,
        owned_credential: Callable[[], AsyncTokenCredential | None] | None = None,
        call_bound: float = kit.CALL_BOUND_SECONDS,
    ) -> None:
        """Prefer the classmethods. `make_client` builds the SDK client once, at first use;
        `owned_credential` returns the credential this provider created and must close;
        `call_bound` is each call's total time bound in seconds."""
        self._make_client = make_client
        self._owned_credential = owned_credential
        self._client: CommunicationIdentityClient | None = None
        self.call_bound = call_bound
        # One window for the resource's identity API, shared by every request of the process.
        self.backoff = kit.Backoff(DEPENDENCY)

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_connection_string(
        cls, connection_string: str, **client_kwargs: Any
    ) -> AzureIdentityProvider:
        """HMAC (access key) authentication, from an ACS connection string (endpoint + key)."""
        kwargs = {**DEFAULT_CLIENT_KWARGS, **client_kwargs}

        def make_client() -> CommunicationIdentityClient:
            from azure.communication.identity.aio import CommunicationIdentityClient

            return CommunicationIdentityClient.from_connection_string(connection_string, **kwargs)

        return cls(make_client)

    @classmethod
    def from_endpoint(
        cls, endpoint: str, credential: AsyncTokenCredential, **client_kwargs: Any
    ) -> AzureIdentityProvider:
        """Entra ID authentication with a caller-owned async credential (not closed here)."""
        kwargs = {**DEFAULT_CLIENT_KWARGS, **client_kwargs}

        def make_client() -> CommunicationIdentityClient:
            from azure.communication.identity.aio import CommunicationIdentityClient

            return CommunicationIdentityClient(endpoint, credential, **kwargs)

        return cls(make_client)

    @classmethod
    def from_settings(
        cls,
        endpoint: str | None,
        connection_string: str | None,
        managed_identity_client_id: str | None,
        **client_kwargs: Any,
    ) -> AzureIdentityProvider:
        """From ACS_CONNECTION_STRING when set, else ACS_ENDPOINT with a managed identity
        (`ManagedIdentityCredential(client_id=AZURE_CLIENT_ID)` for a user-assigned one,
        `DefaultAzureCredential` otherwise, which also covers `az login` on a laptop)."""
        if connection_string:
            return cls.from_connection_string(connection_string, **client_kwargs)
        if not endpoint:
            raise ValueError("ACS_ENDPOINT or ACS_CONNECTION_STRING is required")
        kwargs = {**DEFAULT_CLIENT_KWARGS, **client_kwargs}
        created: list[AsyncTokenCredential] = []

        def make_client() -> CommunicationIdentityClient:
            from azure.communication.identity.aio import CommunicationIdentityClient

            credential = kit.credential(managed_identity_client_id)
            created.append(credential)
            return CommunicationIdentityClient(endpoint, credential, **kwargs)

        return cls(make_client, owned_credential=lambda: created[0] if created else None)

    # -- IdentityProvider ----------------------------------------------------------------------

    async def create_user_and_token(
        self, scopes: Sequence[str], expires_in: timedelta
    ) -> tuple[str, IssuedToken]:
        """POST /identities with `createTokenWithScopes` and `expiresInMinutes`."""
        acs_scopes = _acs_scopes(scopes)
        user, access_token = await self._call(
            "create_user_and_token",
            lambda client: client.create_user_and_token(acs_scopes, token_expires_in=expires_in),
        )
        return str(user.properties["id"]), IssuedToken(
            token=access_token.token, expires_on=_as_datetime(access_token.expires_on)
        )

    async def issue_token(
        self, communication_user_id: str, scopes: Sequence[str], expires_in: timedelta
    ) -> IssuedToken:
        """POST /identities/{id}/:issueAccessToken; IdentityNotFound on 404."""
        from azure.communication.identity import CommunicationUserIdentifier

        acs_scopes = _acs_scopes(scopes)
        user = CommunicationUserIdentifier(communication_user_id)
        access_token = await self._call(
            "issue_token",
            lambda client: client.get_token(user, acs_scopes, token_expires_in=expires_in),
            not_found=_raise_identity_not_found,
        )
        return IssuedToken(
            token=access_token.token, expires_on=_as_datetime(access_token.expires_on)
        )

    async def revoke_tokens(self, communication_user_id: str) -> None:
        """POST /identities/{id}/:revokeAccessTokens; a missing identity has no tokens left."""
        from azure.communication.identity import CommunicationUserIdentifier

        user = CommunicationUserIdentifier(communication_user_id)
        await self._call(
            "revoke_tokens", lambda client: client.revoke_tokens(user), not_found=_ignore
        )

    async def delete_user(self, communication_user_id: str) -> None:
        """DELETE /identities/{id}; a 404 means it is already gone, which is what we want."""
        from azure.communication.identity import CommunicationUserIdentifier

        user = CommunicationUserIdentifier(communication_user_id)
        await self._call("delete_user", lambda client: client.delete_user(user), not_found=_ignore)

    async def exchange_teams_token(
        self, aad_token: str, client_id: str, user_object_id: str
    ) -> IssuedToken:
        """POST /teamsUser/:exchangeAccessToken; TeamsTokenRejected when ACS refuses the token."""
        access_token = await self._call(
            "exchange_teams_token",
            lambda client: client.get_token_for_teams_user(aad_token, client_id, user_object_id),
            refuses_caller_token=True,
        )
        return IssuedToken(
            token=access_token.token, expires_on=_as_datetime(access_token.expires_on)
        )

    async def close(self) -> None:
        """Close the SDK client and the credential this provider created, if any."""
        client, self._client = self._client, None
        await kit.close_client(client, self._owned_credential)

    # -- internals -----------------------------------------------------------------------------

    def _sdk_client(self) -> CommunicationIdentityClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def _call(
        self,
        operation: str,
        call: Callable[[CommunicationIdentityClient], Awaitable[_T]],
        *,
        not_found: Callable[[], _T] | None = None,
        refuses_caller_token: bool = False,
    ) -> _T:
        """Run one SDK call and translate its failures into the port's exceptions.

        `refuses_caller_token`: the call carries a token of the caller's (the Teams exchange), so
        400/401/403 mean that token was refused, not that Switchboard's credentials were.
        """
        from azure.core.exceptions import AzureError

        def on_status(error: HttpResponseError) -> None:
            status = error.status_code
            if status == 404 and not_found is not None:
                raise _NotFound from None
            code = kit.error_code(error)
            if refuses_caller_token and (
                status == 400 or (status == 401 and code == TEAMS_TOKEN_REFUSED_CODE)
            ):
                logger.info("ACS refused a Teams user's token (HTTP %s, code %s)", status, code)
                raise TeamsTokenRejected(f"ACS refused it (code {code[:64]})") from None
            if status in (401, 403):
                # Switchboard's own identity, whatever the call carried: say what to grant.
                logger.error(
                    "ACS refused Switchboard's credentials on %s (HTTP %s, code %s): check %s",
                    operation,
                    status,
                    code,
                    CREDENTIALS_CHECK,
                )
                raise AcsAccessDenied() from None

        try:
            async with kit.guarded(
                self.backoff,
                service="ACS",
                operation=operation,
                seconds=self.call_bound,
                log=logger,
            ):
                with kit.sdk_errors(
                    DEPENDENCY,
                    service="ACS",
                    check=CREDENTIALS_CHECK,
                    operation=operation,
                    on_status=on_status,
                    # Every other AzureError is a failure to get an answer (connection refused,
                    # DNS, timeouts, an unreadable response): try again later.
                    connection_errors=(AzureError,),
                    backoff=self.backoff,
                    log=logger,
                ):
                    return await call(self._sdk_client())
        except _NotFound:
            assert not_found is not None  # on_status raises _NotFound only then
            return not_found()


class _NotFound(Exception):
    """A 404 the calling operation maps itself (to IdentityNotFound, or to success)."""


def _acs_scopes(scopes: Sequence[str]) -> list[str | CommunicationTokenScope]:
    """Scope names as the SDK's enum; ValueError for a name ACS does not know."""
    from azure.communication.identity import CommunicationTokenScope

    if isinstance(scopes, str) or not scopes:
        raise ValueError("scopes must be a non-empty list of ACS scope names")
    known = {scope.value: scope for scope in CommunicationTokenScope}
    unknown = sorted(set(scopes) - known.keys())
    if unknown:
        raise ValueError(f"unknown ACS scopes: {', '.join(unknown)}")
    return [known[name] for name in dict.fromkeys(scopes)]


def _as_datetime(expires_on: object) -> datetime:
    """The SDK's AccessToken.expires_on as an aware datetime.

    SDK 1.5.0 hands back the service's ISO-8601 string (`2023-10-10T21:39:39.3244584+00:00`)
    despite AccessToken declaring epoch seconds; accept both, and a datetime.
    """
    if isinstance(expires_on, datetime):
        parsed = expires_on
    elif isinstance(expires_on, int | float):
        parsed = datetime.fromtimestamp(expires_on, UTC)
    elif isinstance(expires_on, str):
        parsed = datetime.fromisoformat(expires_on.replace("Z", "+00:00"))
    else:
        raise TypeError(f"unexpected expires_on type from the ACS SDK: {type(expires_on)}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _raise_identity_not_found() -> NoReturn:
    raise IdentityNotFound("the ACS identity does not exist (deleted or unknown)")


def _ignore() -> None:
    return None
