"""Push: the caller's devices and the dev outbox (DESIGN §4)."""

from __future__ import annotations

import logging

from switchboard import errors
from switchboard.http import Reply, blueprint, no_content, route
from switchboard.models.push import DeviceRegistration, PushOutbox
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

bp = blueprint("push")
log = logging.getLogger("switchboard.push")


@route(
    bp,
    "PUT",
    "me/devices/{installationId}",
    summary="Register one of the caller's devices for the controller's pushes (at most 10)",
    body=DeviceRegistration,
    status=204,
    errors=(404, 409, 503),
)
async def register_device(caller: Caller, installationId: str, body: DeviceRegistration) -> Reply:
    await get_runtime().push.register_device(
        caller, installationId, body.platform, body.push_channel
    )
    return no_content


@route(
    bp,
    "DELETE",
    "me/devices/{installationId}",
    summary="Remove one of the caller's devices; it gets no more pushes",
    status=204,
    errors=(503,),
)
async def remove_device(caller: Caller, installationId: str) -> Reply:
    await get_runtime().push.remove_device(caller, installationId)
    return no_content


@route(
    bp,
    "GET",
    "dev/push",
    public=True,
    response=PushOutbox,
    errors=(404,),
    summary="Dev only: the pushes the local push hub kept, newest first",
)
async def dev_push_outbox() -> PushOutbox:
    rt = get_runtime()
    if rt.dev_issuer is None:
        raise errors.NotFound("Dev routes exist only with AUTH_MODE=dev.")
    sent = getattr(rt.push_sender, "sent", None)
    if sent is None:
        raise errors.NotFound("Pushes go to a Notification Hub here; there is no local outbox.")
    items = await sent()
    return PushOutbox.model_validate({"items": items})
