"""The SmsSender port on Azure Communication Services SMS, through the official async SDK
(`azure.communication.sms.aio.SmsClient`, REST `POST /sms?api-version=2021-03-07`).

Every message asks for a delivery report (`enable_delivery_report=True`; the reports arrive as
`Microsoft.Communication.SMSDeliveryReportReceived` events at the `sms_events` function) and is
tagged with its purpose. The service answers 202 with one result per recipient: a recipient it
refused (`successful: false`, say 400 "Invalid To phone number format") is a failed message in
the returned `SmsSendResult`, not an exception. Whole-request failures go through the Azure
adapter kit: 429, 5xx, timeouts and connection errors become `DependencyUnavailable("sms")`
with the service's Retry-After; 401/403 the same plus one error log line naming what to check.

The SDK is imported at first use, and its client created once and reused. No phone number, key
or connection string reaches a log line or an exception message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from switchboard.adapters import azure as kit
from switchboard.logs import redact_numbers
from switchboard.ports import SmsSendResult

if TYPE_CHECKING:
    from azure.communication.sms.aio import SmsClient
    from azure.core.credentials_async import AsyncTokenCredential

logger = logging.getLogger(__name__)

DEPENDENCY = "sms"
CREDENTIALS_CHECK = (
    "ACS_CONNECTION_STRING, or the managed identity and its role on the ACS resource"
)
# As for ACS Identity: throttling and 5xx surface at once as a 503 with the service's
# Retry-After instead of the SDK sleeping while the HTTP caller waits.
DEFAULT_CLIENT_KWARGS = kit.ACS_CLIENT_KWARGS


class AzureSmsSender:
    """ACS SMS from one sender (`SMS_FROM`); build it with `from_settings`."""

    def __init__(
        self,
        sender: str,
        make_client: Callable[[], SmsClient],
        *,
        owned_credential: Callable[[], AsyncTokenCredential | None] | None = None,
        call_bound: float = kit.CALL_BOUND_SECONDS,
    ) -> None:
        self.sender = sender
        self._make_client = make_client
        self._owned_credential = owned_credential
        self._client: SmsClient | None = None
        self.call_bound = call_bound
        self.backoff = kit.Backoff(DEPENDENCY)  # after a 429: no send until its Retry-After

    @classmethod
    def from_settings(
        cls,
        sender: str,
        *,
        endpoint: str | None,
        connection_string: str | None,
        managed_identity_client_id: str | None,
        **client_kwargs: Any,
    ) -> AzureSmsSender:
        """From ACS_CONNECTION_STRING when set, else ACS_ENDPOINT with the managed identity."""
        kwargs = {**DEFAULT_CLIENT_KWARGS, **client_kwargs}
        if connection_string:

            def from_connection_string() -> SmsClient:
                from azure.communication.sms.aio import SmsClient

                return SmsClient.from_connection_string(connection_string, **kwargs)

            return cls(sender, from_connection_string)
        if not endpoint:
            raise ValueError("ACS_ENDPOINT or ACS_CONNECTION_STRING is required")
        created: list[AsyncTokenCredential] = []

        def with_identity() -> SmsClient:
            from azure.communication.sms.aio import SmsClient

            credential = kit.credential(managed_identity_client_id)
            created.append(credential)
            return SmsClient(endpoint, credential, **kwargs)

        return cls(sender, with_identity, owned_credential=lambda: created[0] if created else None)

    async def send(self, to: str, message: str, *, tag: str) -> SmsSendResult:
        client = self._sdk_client()
        async with kit.guarded(
            self.backoff,
            service="ACS SMS",
            operation="send_sms",
            seconds=self.call_bound,
            log=logger,
        ):
            with kit.sdk_errors(
                DEPENDENCY,
                service="ACS SMS",
                check=CREDENTIALS_CHECK,
                operation="send_sms",
                backoff=self.backoff,
                log=logger,
            ):
                results = await client.send(
                    self.sender, [to], message, enable_delivery_report=True, tag=tag
                )
        if not results:  # one recipient in, one result out; anything else is the service's bug
            return SmsSendResult(None, accepted=False, status_code=502, error="no result")
        result = results[0]
        accepted = bool(result.successful)
        if not accepted:
            # The service's reason names no number ("Invalid To phone number format.").
            logger.warning(
                "ACS SMS refused a recipient (HTTP %s): %s",
                result.http_status_code,
                redact_numbers(result.error_message),
            )
        return SmsSendResult(
            message_id=result.message_id or None,
            accepted=accepted,
            status_code=int(result.http_status_code or (202 if accepted else 500)),
            error=None if accepted else redact_numbers(result.error_message),
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        await kit.close_client(client, self._owned_credential)

    def _sdk_client(self) -> SmsClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client
