"""Calls: the ACS call events function (`call_events`, docs/push.md), parsed into typed events."""

from __future__ import annotations

import logging

import azure.functions as func

from switchboard import errors
from switchboard.http import blueprint
from switchboard.logs import safe
from switchboard.runtime import get_runtime

bp = blueprint("calls")
log = logging.getLogger("switchboard.calls")


@bp.function_name("call_events")
@bp.event_grid_trigger(arg_name="event")
async def call_events(event: func.EventGridEvent) -> None:
    """ACS calling events (Event Grid): CallEnded clears a club's call; the rest is skipped.

    The payload is parsed at the edge into a typed event (`parse_call_event`): the service
    never sees Event Grid's shapes. Never raises for one bad event: Event Grid would redeliver
    the whole batch. Only a dependency failure (the store down) is raised, so Event Grid
    retries later.
    """
    from switchboard.services.calls import parse_call_event

    try:
        parsed = parse_call_event(event.id, event.event_type, event.event_time, event.get_json())
    except Exception:
        log.warning("call event %s unreadable, skipped", safe(event.id, 80))
        return
    try:
        outcome = await get_runtime().calls.handle(parsed)
    except errors.DependencyUnavailable:
        raise
    except errors.SwitchboardError as exc:
        log.warning("call event %s skipped: %s", parsed.event_id, exc.code)
        return
    log.info("call event %s %s", parsed.event_id, outcome)
