"""The PushSender port on Azure Notification Hubs, over its REST API.

There is no maintained Python SDK for the Notification Hubs data plane (the old `azure-servicebus`
0.x helpers are retired, and the management SDK does not send), so this is the one client in
Switchboard written by hand — kept small, on an azure-core async pipeline (retries, user agent,
the shared transport) with one extra policy that signs each request with a Shared Access
Signature: the hub's data plane accepts SAS only, from a Send-rights connection string
(`NOTIFICATION_HUB_CONNECTION_STRING`, a Key Vault reference in Azure).

This module is imported only when the hub is configured (azure-core comes with it then).

The calls, as documented in the Notification Hubs REST reference (learn.microsoft.com/rest/api/
notificationhubs), api-version 2023-10-01 (the first with the FCM v1 platform):

- create or overwrite an installation: `PUT /{hub}/installations/{id}` with the installation
  (`installationId`, `platform` APNS|FCMV1, `pushChannel`, `tags`, `templates`) → 200;
- patch an installation: `PATCH /{hub}/installations/{id}`, a JSON Patch
  (`application/json-patch+json`) → 200, 404 when there is none;
- delete an installation: `DELETE /{hub}/installations/{id}` → 204 (also when there was none);
- send a template notification: `POST /{hub}/messages/` with `ServiceBusNotification-Format:
  template`, `ServiceBusNotification-Tags: <expression>` and a flat JSON object of string
  properties → 201. Each installation carries one template per platform, so one send reaches
  iOS and Android alike; the expression is an OR of at most 20 tags.

Failures, mapped to the port's exceptions:
- 401 (a wrong or expired key): `DependencyUnavailable("push")`, logged as an error naming the
  setting to check; 429 and 5xx: `DependencyUnavailable` with the hub's Retry-After;
- 403 (quota exceeded — the Free tier's monthly pushes or 500 active devices — or a message too
  large) and 413: `PushRejected`, since retrying soon will not help;
- 404 on PATCH: `PushInstallationNotFound`; on DELETE: success (already gone);
- 400 on an installation PUT or PATCH: the hub refused the caller's push channel (it validates
  APNs and FCM tokens): `errors.InvalidInput` on `pushChannel`; 400 on a send is our bug.

No key, SAS token or push channel reaches a log line or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from azure.core.pipeline.policies import SansIOHTTPPolicy

from switchboard import errors
from switchboard.adapters import azure as kit
from switchboard.notification_hubs import ConnectionString
from switchboard.ports import (
    MAX_TAGS_PER_SEND,
    PUSH_DATA_KEYS,
    PUSH_PLATFORMS,
    PushInstallation,
    PushInstallationNotFound,
    PushMessage,
    PushRejected,
)

if TYPE_CHECKING:
    from azure.core import AsyncPipelineClient
    from azure.core.exceptions import HttpResponseError
    from azure.core.pipeline import PipelineRequest
    from azure.core.rest import AsyncHttpResponse, HttpRequest

logger = logging.getLogger(__name__)

DEPENDENCY = "push"
API_VERSION = "2023-10-01"
CREDENTIALS_CHECK = (
    "NOTIFICATION_HUB_CONNECTION_STRING (a Send-rights connection string of the hub's namespace) "
    "and NOTIFICATION_HUB_NAME"
)
SAS_LIFETIME_SECONDS = 3600
# A token is renewed this long before it expires, so a request never carries a dying one.
SAS_RENEW_MARGIN_SECONDS = 300
TEMPLATE_NAME = "switchboard"
HUB_PLATFORM = {"apns": "apns", "fcmv1": "fcmv1"}

# As the ACS adapter: throttling and 5xx surface at once as a 503 with the hub's Retry-After
# instead of the pipeline sleeping while a caller waits; connection failures retry quickly.
DEFAULT_RETRY: dict[str, Any] = {
    "retry_total": 2,
    "retry_status": 0,
    "retry_backoff_factor": 0.4,
    "retry_backoff_max": 2,
}


def _template_property(name: str) -> str:
    return f"$({name})"


def _data_properties() -> dict[str, str]:
    return {key: _template_property(key) for key in PUSH_DATA_KEYS}


# The template each installation carries, by platform: the title and body the OS shows, and the
# data the app reads (every key of PUSH_DATA_KEYS, empty when a send does not set it).
TEMPLATES: Mapping[str, dict[str, Any]] = {
    "apns": {
        "aps": {
            "alert": {"title": "$(title)", "body": "$(body)"},
            "sound": "default",
            "content-available": 1,
        },
        **_data_properties(),
    },
    "fcmv1": {
        "message": {
            "notification": {"title": "$(title)", "body": "$(body)"},
            "data": _data_properties(),
        }
    },
}


def sas_token(resource_uri: str, key_name: str, key: str, expiry: int) -> str:
    """A Shared Access Signature for `resource_uri`, valid until `expiry` (epoch seconds), as
    Service Bus and Notification Hubs define it: HMAC-SHA256 over the lower-cased, URL-encoded
    resource URI and the expiry, keyed with the access key."""
    encoded_uri = urllib.parse.quote(resource_uri, safe="").lower()
    to_sign = f"{encoded_uri}\n{expiry}".encode()
    digest = hmac.new(key.encode(), to_sign, hashlib.sha256).digest()
    signature = urllib.parse.quote(base64.b64encode(digest).decode(), safe="")
    return f"SharedAccessSignature sr={encoded_uri}&sig={signature}&se={expiry}&skn={key_name}"


class SasPolicy(SansIOHTTPPolicy[Any, Any]):
    """An azure-core policy that signs every request with a cached SAS token.

    Placed after the retry policy, so each attempt carries a token valid at that moment.
    """

    def __init__(
        self, resource_uri: str, key_name: str, key: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._resource_uri = resource_uri
        self._key_name = key_name
        self._key = key
        self._clock = clock
        self._token = ""
        self._expiry = 0

    def token(self) -> str:
        now = int(self._clock())
        if now >= self._expiry - SAS_RENEW_MARGIN_SECONDS:
            self._expiry = now + SAS_LIFETIME_SECONDS
            self._token = sas_token(self._resource_uri, self._key_name, self._key, self._expiry)
        return self._token

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        request.http_request.headers["Authorization"] = self.token()


class AzurePushHub:
    """Installations and template sends on one Notification Hub, over an azure-core pipeline.

    Build it with `from_connection_string`. The pipeline client is created on first use and
    reused for the life of the process; `close` releases it. `client_kwargs` reach the pipeline
    (tests pass `transport=`).
    """

    def __init__(self, connection: ConnectionString, hub_name: str, **client_kwargs: Any) -> None:
        if not hub_name or "/" in hub_name:
            raise ValueError("NOTIFICATION_HUB_NAME must name one hub")
        self._connection = connection
        self._hub = hub_name
        self._kwargs = {**DEFAULT_RETRY, **client_kwargs}
        self._client: AsyncPipelineClient[HttpRequest, AsyncHttpResponse] | None = None
        self.hub_url = f"{connection.endpoint}{urllib.parse.quote(hub_name, safe='')}"
        self.call_bound = kit.CALL_BOUND_SECONDS
        self.backoff = kit.Backoff(DEPENDENCY)  # after a 429: no call until its Retry-After

    @classmethod
    def from_connection_string(
        cls, connection_string: str, hub_name: str, **client_kwargs: Any
    ) -> AzurePushHub:
        return cls(ConnectionString.parse(connection_string), hub_name, **client_kwargs)

    # -- PushSender ------------------------------------------------------------------------------

    async def put_installation(self, installation: PushInstallation) -> None:
        """PUT installations/{id}: the installation with its user tag and its one template."""
        if installation.platform not in PUSH_PLATFORMS:
            raise ValueError(f"unknown push platform {installation.platform!r}")
        body = {
            "installationId": installation.installation_id,
            "platform": HUB_PLATFORM[installation.platform],
            "pushChannel": installation.push_channel,
            "tags": [installation.tag],
            "templates": {
                TEMPLATE_NAME: {"body": json.dumps(TEMPLATES[installation.platform])},
            },
        }
        await self._call(
            "put_installation",
            "PUT",
            self._installation_path(installation.installation_id),
            body=json.dumps(body).encode(),
            content_type="application/json",
            bad_input=_refused_channel(),
        )

    async def update_push_channel(self, installation_id: str, push_channel: str) -> None:
        """PATCH installations/{id}: replace /pushChannel; PushInstallationNotFound on 404."""
        patch = [{"op": "replace", "path": "/pushChannel", "value": push_channel}]
        await self._call(
            "update_push_channel",
            "PATCH",
            self._installation_path(installation_id),
            body=json.dumps(patch).encode(),
            content_type="application/json-patch+json",
            not_found=PushInstallationNotFound("no such installation"),
            bad_input=_refused_channel(),
        )

    async def delete_installation(self, installation_id: str) -> None:
        """DELETE installations/{id}; a 404 means it is gone, which is what we want."""
        await self._call(
            "delete_installation",
            "DELETE",
            self._installation_path(installation_id),
            not_found=None,
            ignore_not_found=True,
        )

    async def send(self, message: PushMessage, tags: Sequence[str]) -> None:
        """POST messages/: a template send to `tag1 || tag2 || …` (at most 20 tags)."""
        if isinstance(tags, str) or not 1 <= len(tags) <= MAX_TAGS_PER_SEND:
            raise ValueError(f"a send names 1 to {MAX_TAGS_PER_SEND} tags")
        unknown = set(message.data) - set(PUSH_DATA_KEYS)
        if unknown:
            raise ValueError(f"push data keys not in the templates: {sorted(unknown)}")
        properties = {key: "" for key in PUSH_DATA_KEYS}
        properties.update(message.data)
        properties.update(title=message.title, body=message.body)
        await self._call(
            "send",
            "POST",
            "messages/",
            body=json.dumps(properties).encode(),
            content_type="application/json;charset=utf-8",
            headers={
                "ServiceBusNotification-Format": "template",
                "ServiceBusNotification-Tags": " || ".join(dict.fromkeys(tags)),
            },
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _installation_path(installation_id: str) -> str:
        return f"installations/{urllib.parse.quote(installation_id, safe='')}"

    def _pipeline(self) -> AsyncPipelineClient[HttpRequest, AsyncHttpResponse]:
        if self._client is None:
            from azure.core import AsyncPipelineClient
            from azure.core.pipeline.policies import (
                AsyncRetryPolicy,
                HeadersPolicy,
                UserAgentPolicy,
            )

            retry = AsyncRetryPolicy(**self._kwargs)
            sas = SasPolicy(self.hub_url, self._connection.key_name, self._connection.key)
            transport = self._kwargs.get("transport")
            self._client = AsyncPipelineClient(
                self._connection.endpoint,
                policies=[
                    HeadersPolicy({"x-ms-version": API_VERSION}),
                    UserAgentPolicy(sdk_moniker="switchboard-notificationhubs/0.1"),
                    retry,
                    sas,
                ],
                transport=transport,
            )
        return self._client

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        not_found: Exception | None = None,
        ignore_not_found: bool = False,
        bad_input: Exception | None = None,
    ) -> None:
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.core.rest import HttpRequest

        all_headers = dict(headers or {})
        if content_type:
            all_headers["Content-Type"] = content_type
        request = HttpRequest(
            method,
            f"{self.hub_url}/{path}?api-version={API_VERSION}",
            headers=all_headers,
            content=body,
        )

        def on_status(error: HttpResponseError) -> None:
            status = error.status_code
            if status == 404 and ignore_not_found:
                raise _Gone from None
            if status == 404 and not_found is not None:
                raise not_found from None
            if status == 400 and bad_input is not None:
                raise bad_input from None
            if status in (403, 413):
                # The hub's 403 is "quota exceeded or message too large": not the credentials
                # (those answer 401), and not worth a quick retry either.
                logger.warning(
                    "Notification Hubs refused %s (HTTP %s): quota exceeded or message too large",
                    operation,
                    status,
                )
                raise PushRejected(f"the push hub refused {operation} (HTTP {status})") from None

        try:
            async with kit.guarded(
                self.backoff,
                service="Notification Hubs",
                operation=operation,
                seconds=self.call_bound,
                log=logger,
            ):
                with kit.sdk_errors(
                    DEPENDENCY,
                    service="Notification Hubs",
                    check=CREDENTIALS_CHECK,
                    operation=operation,
                    on_status=on_status,
                    connection_errors=(AzureError,),
                    backoff=self.backoff,
                    log=logger,
                ):
                    response = await self._pipeline().send_request(request)
                    if response.status_code >= 300:
                        await response.read()
                        # The error carries the response (for Retry-After), never the body.
                        raise HttpResponseError(response=response)
        except _Gone:
            return


def _refused_channel() -> errors.InvalidInput:
    # Never the channel itself in the message: it is a device's push credential.
    return errors.InvalidInput("The push service refused this pushChannel.", field="pushChannel")


class _Gone(Exception):
    """A 404 that the calling operation treats as success (DELETE)."""
