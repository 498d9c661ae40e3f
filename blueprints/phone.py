"""Phone & SMS: number verification by SMS code, SMS invitations, the ACS SMS events function
(`sms_events`) (docs/phone.md)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from switchboard import errors
from switchboard.http import blueprint, route
from switchboard.logs import safe
from switchboard.models.identity import Profile
from switchboard.models.phone import (
    PhoneCodeRequest,
    PhoneNumberRequest,
    SmsInviteRequest,
    SmsMessage,
    VerificationStarted,
)
from switchboard.runtime import get_runtime
from switchboard.services.caller import Caller

if TYPE_CHECKING:  # annotations only: the service loads when the runtime builds it
    from switchboard.services.identity import ProfileView

bp = blueprint("phone")
log = logging.getLogger("switchboard.phone")


@route(
    bp,
    "POST",
    "me/phone",
    summary="Send a 6-digit code by SMS to the number the caller wants to verify",
    body=PhoneNumberRequest,
    response=VerificationStarted,
    status=202,
    errors=(404, 409, 429, 503),
)
async def start_phone_verification(caller: Caller, body: PhoneNumberRequest) -> VerificationStarted:
    sent = await get_runtime().phone.start_verification(caller, body.phone_number)
    assert sent.expires_at is not None
    return VerificationStarted(
        message_id=sent.message_id,
        status="accepted" if sent.status == "accepted" else "failed",
        expires_at=sent.expires_at,
    )


@route(
    bp,
    "POST",
    "me/phone/verify",
    summary="Verify the caller's number with the code the SMS carried",
    body=PhoneCodeRequest,
    response=Profile,
    errors=(409,),
)
async def verify_phone(caller: Caller, body: PhoneCodeRequest) -> ProfileView:
    return await get_runtime().phone.verify(caller, body.code)


@route(
    bp,
    "POST",
    "invites/sms",
    summary="Invite someone by SMS to a club's call or a meeting the caller belongs to",
    body=SmsInviteRequest,
    response=SmsMessage,
    status=202,
    errors=(404, 409, 429, 503),
)
async def invite_by_sms(caller: Caller, body: SmsInviteRequest) -> SmsMessage:
    sent = await get_runtime().phone.invite(caller, body.to, body.club_id, body.meeting_id)
    return SmsMessage(
        message_id=sent.message_id, status="accepted" if sent.status == "accepted" else "failed"
    )


@bp.function_name("sms_events")
@bp.event_grid_trigger(arg_name="event")
async def sms_events(event: func.EventGridEvent) -> None:
    """ACS SMS events: delivery reports and inbound STOP/START. A malformed or unknown event is
    logged and ignored (it must not make Event Grid redeliver the batch); a store that is down
    raises, so Event Grid delivers again later."""
    try:
        data = event.get_json()
        event_type = event.event_type or ""
    except Exception:  # a body that is not JSON: nothing to act on, nothing to retry
        log.warning("SMS event %s with an unreadable body: ignored", safe(event.id, 80))
        return
    try:
        await get_runtime().phone.handle_event(event_type, data)
    except errors.DependencyUnavailable:
        raise
    except errors.SwitchboardError as exc:
        log.warning("SMS event %s not applied: %s", safe(event.id, 80), exc.code)
    except Exception:
        # A shape we did not foresee: logged for us to fix, and not redelivered forever.
        log.exception("SMS event %s failed: ignored", safe(event.id, 80))
