"""Push: the caller's devices, the dev outbox, and the ACS call events function (DESIGN §4)."""

from __future__ import annotations

import logging

import azure.functions as func

from switchboard import errors
from switchboard.http import Reply, blueprint, no_content, route
from switchboard.logs import safe
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
