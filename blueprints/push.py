"""Push: the caller's devices (docs/push.md). ACS call events are the calls blueprint's; the
dev outbox of pushes is the dev blueprint's (switchboard/dev/routes.py)."""

from __future__ import annotations

import logging

from switchboard.http import Reply, blueprint, no_content, route
from switchboard.models.push import DeviceRegistration
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
