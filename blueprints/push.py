"""Push: the caller's devices and the ACS call events function (docs/push.md)."""

from __future__ import annotations

import logging

import azure.functions as func

from switchboard import errors
from switchboard.http import Reply, blueprint, no_content, route
from switchboard.logs import safe
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


@bp.function_name("call_events")
@bp.event_grid_trigger(arg_name="event")
async def call_events(event: func.EventGridEvent) -> None:
    """ACS calling events (Event Grid): CallEnded clears a club's call; the rest is skipped.

    Never raises for one bad event: Event Grid would redeliver the whole batch. Only a
    dependency failure (the store down) is raised, so Event Grid retries later.
    """
    from switchboard.services.push import CallEvent

    try:
        parsed = CallEvent(
            event_id=str(event.id or ""),
            event_type=str(event.event_type or ""),
            event_time=event.event_time,
            data=event.get_json(),
        )
    except Exception:
        log.warning("call event %s unreadable, skipped", safe(event.id, 80))
        return
    try:
        outcome = await get_runtime().call_events.handle(parsed)
    except errors.DependencyUnavailable:
        raise
    except errors.SwitchboardError as exc:
        log.warning("call event %s skipped: %s", safe(parsed.event_id, 80), exc.code)
        return
    log.info("call event %s %s", safe(parsed.event_id, 80), outcome)
