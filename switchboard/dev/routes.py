"""The dev blueprint: every dev-only route in one place (sign-in, its keys, the local outboxes).

`function_app.py` composes it (`compose`) only in dev mode, and a publish leaves
`switchboard/dev/` out, so an app in Azure has none of these routes. Each route still
answers 404 when the runtime it meets has no dev issuer (a test's, or one built with other
settings than the environment's), and the outboxes only when the local adapter runs: the checks
are the adapters' shapes (Protocols below), so this module imports no adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from switchboard import errors
from switchboard.dev.models import (
    DevLoginRequest,
    DevLoginResponse,
    Jwks,
    Outbox,
    OutboxItem,
    ParkedWorkItem,
    ParkedWorkList,
    PushOutbox,
    Rearmed,
)
from switchboard.http import Reply, blueprint, route
from switchboard.runtime import Runtime, get_runtime, use_dev_issuer

if TYPE_CHECKING:
    import azure.functions as func

    from switchboard.auth import LocalIssuer

bp = blueprint("dev")


def compose(app: func.FunctionApp) -> None:
    """Dev mode's part of the composition: the dev blueprint, and the issuer the runtime builds
    for dev sign-in (the runtime names no dev code itself)."""
    from switchboard.dev.issuer import DevTokenIssuer

    use_dev_issuer(DevTokenIssuer)
    app.register_functions(bp)


class KeptSms(Protocol):
    """One message the local SMS outbox kept."""

    @property
    def message_id(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def to(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


@runtime_checkable
class SmsOutbox(Protocol):
    """The local SMS sender: it keeps what it would have sent."""

    async def messages(self) -> Sequence[KeptSms]: ...


@runtime_checkable
class PushOutboxSender(Protocol):
    """The local push hub: it keeps what it would have pushed."""

    async def sent(self) -> Sequence[dict[str, Any]]: ...


@route(
    bp,
    "POST",
    "dev/login",
    public=True,
    body=DevLoginRequest,
    response=DevLoginResponse,
    errors=(404,),
    summary="Dev sign-in (AUTH_MODE=dev only): an app token for any user id",
)
async def dev_login(body: DevLoginRequest) -> Reply:
    issuer = _dev_issuer(get_runtime())
    token, lifetime = issuer.issue(body.user_id, body.display_name)
    return Reply(
        DevLoginResponse(access_token=token, expires_in=lifetime),
        headers={"Cache-Control": "no-store"},
    )


@route(
    bp,
    "GET",
    "dev/jwks",
    public=True,
    response=Jwks,
    errors=(404,),
    summary="Dev sign-in's public keys (AUTH_MODE=dev only), as an OIDC issuer serves them",
)
async def dev_jwks() -> Reply:
    return Reply(_dev_issuer(get_runtime()).jwks())


@route(
    bp,
    "GET",
    "dev/outbox",
    public=True,
    response=Outbox,
    errors=(404,),
    summary="Dev only (AUTH_MODE=dev, local SMS): the SMS the local outbox kept, newest first",
)
async def dev_outbox() -> Outbox:
    rt = get_runtime()
    sender = rt.adapters.sms_sender
    if rt.adapters.dev_issuer is None or not isinstance(sender, SmsOutbox):
        raise errors.NotFound("The outbox exists only with AUTH_MODE=dev and local SMS.")
    messages = await sender.messages()
    return Outbox(
        items=[
            OutboxItem(
                message_id=m.message_id,
                from_=m.sender,
                to=m.to,
                message=m.message,
                tag=m.tag,
                status=m.status,
                created_at=m.created_at,
            )
            for m in messages
        ]
    )


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
    _dev_issuer(rt)
    sender = rt.push_sender
    if not isinstance(sender, PushOutboxSender):
        raise errors.NotFound("Pushes go to a Notification Hub here; there is no local outbox.")
    return PushOutbox.model_validate({"items": await sender.sent()})


@route(
    bp,
    "GET",
    "dev/work",
    public=True,
    response=ParkedWorkList,
    errors=(404,),
    summary="Dev only: reaction work that kept failing and was parked",
)
async def dev_parked_work() -> ParkedWorkList:
    rt = get_runtime()
    _dev_issuer(rt)
    parked = await rt.health.parked_work()
    return ParkedWorkList(
        items=[
            ParkedWorkItem(kind=p.kind, key=p.key, attempts=p.attempts, last_error=p.last_error)
            for p in parked
        ]
    )


@route(
    bp,
    "POST",
    "dev/work/rearm",
    public=True,
    response=Rearmed,
    errors=(404,),
    summary="Dev only: make every parked reaction work item due again",
)
async def dev_rearm_work() -> Rearmed:
    rt = get_runtime()
    _dev_issuer(rt)
    return Rearmed(rearmed=await rt.reactor.rearm_parked())


def _dev_issuer(rt: Runtime) -> LocalIssuer:
    if rt.adapters.dev_issuer is None:
        raise errors.NotFound("Dev routes exist only with AUTH_MODE=dev.")
    return rt.adapters.dev_issuer
