"""Teams meetings through Microsoft Graph (`msgraph-sdk`): the `MeetingProvider` port's Azure side.

Meetings are online meetings of one organizer (`MEETINGS_ORGANIZER_ID`), made with the app's own
identity (application permission `OnlineMeetings.ReadWrite.All`, plus a Teams application access
policy granted for that organizer — see docs/deploy.md's one-time Graph setup):

- create: `POST /users/{organizer}/onlineMeetings/createOrGet` with `externalId` = our meetingId,
  so the SDK's retries (and any retry of ours) get the same meeting back, never a second one;
  then, unless the meeting already has it, `PATCH …/onlineMeetings/{id}` with
  `lobbyBypassSettings.scope` = `MEETINGS_LOBBY_BYPASS` (createOrGet takes no lobby settings), so
  ACS users, who join as guests, are admitted without waiting (`everyone`).
- find: `GET …/onlineMeetings?$filter=joinMeetingIdSettings/joinMeetingId eq '<id>'`; Graph's
  404 or 400 for it is "no such meeting", not an error.
- delete: `DELETE …/onlineMeetings/{id}`; a meeting already gone is fine.

Failures: Graph's "No application access policy" refusal → `GraphAccessPolicyMissing` (a 503
telling what the admin must grant); other 401/403 and credential failures → 503 and one error log
line naming what to check; 429 and 503/504 are retried inside the SDK (its RetryHandler honours
Retry-After) only while the wait is at most `MAX_RETRY_WAIT_SECONDS`, then → 503 with the
service's Retry-After; any other 5xx, a timeout or no connection → 503.

`msgraph` and kiota are imported at the first Graph call, never at `import function_app`: they
cost far more import time than the rest of the app (see `make bench`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from switchboard.adapters.azure import (
    CALL_BOUND_SECONDS,
    DEFAULT_RETRY_AFTER_SECONDS,
    Backoff,
    credential,
    guarded,
    retry_after_seconds,
)
from switchboard.errors import DependencyUnavailable, GraphAccessPolicyMissing
from switchboard.ports import OnlineMeeting

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials_async import AsyncTokenCredential

log = logging.getLogger("switchboard.graph")

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# How long the SDK may wait, per retry, for a throttled or busy Graph before we give up and pass
# the wait on to our caller as Retry-After: a request handler should not sleep for minutes.
MAX_RETRY_WAIT_SECONDS = 3.0
MAX_RETRIES = 2
# Base of the SDK's exponential backoff when Graph sends no Retry-After.
RETRY_BASE_DELAY_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 15.0
CHECK = (
    "the app identity's Graph application permission OnlineMeetings.ReadWrite.All "
    "(GRAPH_TENANT_ID, GRAPH_CLIENT_ID/GRAPH_CLIENT_SECRET or the managed identity)"
)


class GraphMeetingProvider:
    """Online meetings of the configured organizer, through msgraph-sdk; `provider: "graph"`."""

    name = "graph"

    def __init__(
        self,
        *,
        organizer_id: str,
        lobby_bypass: str,
        credential_factory: Any,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`credential_factory()` makes the AsyncTokenCredential at the first call; `transport`
        replaces httpx's network transport (tests: an httpx.MockTransport)."""
        self._organizer_id = organizer_id
        self._lobby_bypass = lobby_bypass
        self._credential_factory = credential_factory
        self._transport = transport
        self._credential: AsyncTokenCredential | None = None
        self._http: httpx.AsyncClient | None = None
        self._client: Any = None
        self.call_bound = CALL_BOUND_SECONDS
        self.backoff = Backoff("graph")  # after a 429: no Graph call until its Retry-After

    @classmethod
    def from_settings(
        cls,
        *,
        organizer_id: str,
        lobby_bypass: str,
        tenant_id: str | None,
        client_id: str | None,
        client_secret: str | None,
        managed_identity_client_id: str | None,
    ) -> GraphMeetingProvider:
        def make_credential() -> AsyncTokenCredential:
            if client_secret:
                from azure.identity.aio import ClientSecretCredential

                assert tenant_id
                assert client_id  # both required with a secret by Settings
                return ClientSecretCredential(tenant_id, client_id, client_secret)
            return credential(managed_identity_client_id)

        return cls(
            organizer_id=organizer_id,
            lobby_bypass=lobby_bypass,
            credential_factory=make_credential,
        )

    # --- the port ------------------------------------------------------------------------------

    async def create_meeting(
        self, *, external_id: str, subject: str, start: datetime, end: datetime
    ) -> OnlineMeeting:
        from msgraph.generated.models.lobby_bypass_scope import LobbyBypassScope
        from msgraph.generated.models.lobby_bypass_settings import LobbyBypassSettings
        from msgraph.generated.models.online_meeting import OnlineMeeting as GraphMeeting
        from msgraph.generated.users.item.online_meetings.create_or_get.create_or_get_post_request_body import (  # noqa: E501
            CreateOrGetPostRequestBody,
        )

        meetings = self._meetings()
        body = CreateOrGetPostRequestBody(
            external_id=external_id,
            subject=subject,
            start_date_time=start,
            end_date_time=end,
        )
        async with self._guard("create"):
            made = await meetings.create_or_get.post(body)
        if made is None or not made.id or not made.join_web_url:
            log.error("Graph answered createOrGet without a meeting id or join URL")
            raise DependencyUnavailable("graph")
        scope = made.lobby_bypass_settings.scope if made.lobby_bypass_settings else None
        if getattr(scope, "value", scope) != self._lobby_bypass:
            update = GraphMeeting(
                lobby_bypass_settings=LobbyBypassSettings(
                    scope=LobbyBypassScope(self._lobby_bypass), is_dial_in_bypass_enabled=False
                )
            )
            try:
                async with self._guard("set lobby bypass"):
                    patched = await meetings.by_online_meeting_id(made.id).patch(update)
            except BaseException:
                # Not half a meeting: one without the lobby setting would keep ACS users waiting.
                await self._delete_quietly(made.id)
                raise
            if patched is not None and patched.id:
                made = patched
        return _online_meeting(made)

    async def find_by_join_meeting_id(self, join_meeting_id: str) -> OnlineMeeting | None:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.online_meetings.online_meetings_request_builder import (
            OnlineMeetingsRequestBuilder,
        )

        if not join_meeting_id.isdigit():  # it goes into an OData filter
            return None
        query = OnlineMeetingsRequestBuilder.OnlineMeetingsRequestBuilderGetQueryParameters(
            filter=f"joinMeetingIdSettings/joinMeetingId eq '{join_meeting_id}'"
        )
        from kiota_abstractions.api_error import APIError

        async with self._guard("find"):
            try:
                found = await self._meetings().get(
                    request_configuration=RequestConfiguration(query_parameters=query)
                )
            except APIError as error:
                # Not a meeting of our organizer (the usual imported link), or an id Graph will
                # not take: there is no thread id to fill in, and the import goes on without it.
                if error.response_status_code in (400, 404) and not _policy_refusal(error):
                    return None
                raise
        for meeting in (found.value if found else None) or []:
            if meeting.id and meeting.join_web_url:
                return _online_meeting(meeting)
        return None

    async def delete_meeting(self, provider_meeting_id: str) -> None:
        from kiota_abstractions.api_error import APIError

        async with self._guard("delete"):
            try:
                await self._meetings().by_online_meeting_id(provider_meeting_id).delete()
            except APIError as error:
                if error.response_status_code == 404 and not _policy_refusal(error):
                    return  # already gone
                raise

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._credential is not None:
            await self._credential.close()
            self._credential = None
        self._client = None

    # --- the SDK client, made at first use -----------------------------------------------------

    def _meetings(self) -> Any:
        """`/users/{organizer}/onlineMeetings` of the process's one Graph client."""
        if self._client is None:
            self._client = self._build_client()
        return self._client.users.by_user_id(self._organizer_id).online_meetings

    def _build_client(self) -> Any:
        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.kiota_client_factory import KiotaClientFactory
        from kiota_http.middleware import RetryHandler
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.graph_service_client import GraphServiceClient
        from msgraph_core import GraphClientFactory
        from msgraph_core.middleware import GraphTelemetryHandler

        class BoundedRetryHandler(RetryHandler):
            """The SDK's retry handler, honouring Retry-After only up to our bound: a longer wait
            is not slept through but answered as 503 with that Retry-After."""

            def get_delay_time(self, *args: Any, **kwargs: Any) -> float:
                wait = float(super().get_delay_time(*args, **kwargs))
                return wait if wait <= MAX_RETRY_WAIT_SECONDS else RetryHandlerOption.MAX_DELAY

        retry = BoundedRetryHandler(
            RetryHandlerOption(delay=RETRY_BASE_DELAY_SECONDS, max_retries=MAX_RETRIES)
        )
        middleware = [
            retry if isinstance(m, RetryHandler) else m
            for m in KiotaClientFactory.get_default_middleware(None)
        ]
        middleware.append(GraphTelemetryHandler())
        # httpx logs every request's URL (organizer and meeting ids) at INFO.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:
            httpx_log.setLevel(logging.WARNING)
        self._http = GraphClientFactory.create_with_custom_middleware(
            middleware,
            client=httpx.AsyncClient(
                transport=self._transport,
                timeout=REQUEST_TIMEOUT_SECONDS,
            ),
        )
        self._credential = self._credential_factory()
        auth = AzureIdentityAuthenticationProvider(self._credential, scopes=[GRAPH_SCOPE])
        return GraphServiceClient(request_adapter=GraphRequestAdapter(auth, client=self._http))

    @contextlib.asynccontextmanager
    async def _guard(self, operation: str) -> AsyncIterator[None]:
        """One Graph call inside the back-off window and the time bound, its errors mapped."""
        async with guarded(
            self.backoff, service="Graph", operation=operation, seconds=self.call_bound, log=log
        ):
            with _graph_errors(operation, self.backoff):
                yield

    async def _delete_quietly(self, meeting_id: str) -> None:
        try:
            await self.delete_meeting(meeting_id)
        except Exception:
            log.warning("could not remove a Graph meeting left by a failed create", exc_info=True)


def _online_meeting(meeting: Any) -> OnlineMeeting:
    settings = meeting.join_meeting_id_settings
    chat = meeting.chat_info
    return OnlineMeeting(
        provider_meeting_id=meeting.id,
        join_url=meeting.join_web_url,
        thread_id=chat.thread_id if chat else None,
        join_meeting_id=settings.join_meeting_id if settings else None,
        passcode=settings.passcode if settings else None,
    )


def _policy_refusal(error: BaseException) -> bool:
    """Graph's answer when no Teams application access policy lets the app act for the user."""
    main = getattr(error, "error", None)
    message = str(getattr(main, "message", None) or getattr(error, "message", None) or "")
    return "application access policy" in message.lower()


@contextlib.contextmanager
def _graph_errors(operation: str, backoff: Backoff | None = None) -> Iterator[None]:
    """Graph SDK failures → the port's exceptions (see the module docstring)."""
    import httpx
    from azure.core.exceptions import ClientAuthenticationError
    from kiota_abstractions.api_error import APIError

    try:
        yield
    except APIError as error:
        status = error.response_status_code
        code = getattr(getattr(error, "error", None), "code", None) or "unknown"
        if _policy_refusal(error):
            log.error(
                "Graph %s: no Teams application access policy lets the app act for "
                "MEETINGS_ORGANIZER_ID; run infra/scripts/teams-access-policy.ps1",
                operation,
            )
            raise GraphAccessPolicyMissing() from None
        if status in (401, 403):
            log.error(
                "Graph refused %s (HTTP %s, code %s): check %s", operation, status, code, CHECK
            )
            raise DependencyUnavailable("graph", retry_after=DEFAULT_RETRY_AFTER_SECONDS) from None
        if status is None or status in (408, 429) or status >= 500:
            log.warning("Graph %s failed with HTTP %s (code %s)", operation, status, code)
            wait = retry_after_seconds(error.response_headers)
            if status == 429 and backoff is not None:
                backoff.hold(wait)
            raise DependencyUnavailable("graph", retry_after=wait) from None
        raise  # 400 and the like: our request is wrong, for the 500 handler to log
    except ClientAuthenticationError:
        log.error("Graph %s: the credential got no token: check %s", operation, CHECK)
        raise DependencyUnavailable("graph", retry_after=DEFAULT_RETRY_AFTER_SECONDS) from None
    except (httpx.TransportError, TimeoutError) as error:
        log.warning("Graph %s failed: %s", operation, type(error).__name__)
        raise DependencyUnavailable("graph", retry_after=DEFAULT_RETRY_AFTER_SECONDS) from None
