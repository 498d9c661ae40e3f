"""System routes: health, the OpenAPI document, and the dev-mode sign-in (DESIGN §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard import errors
from switchboard.http import ROUTES, Reply, blueprint, route
from switchboard.models.system import (
    DevLoginRequest,
    DevLoginResponse,
    Health,
    Jwks,
    ParkedWorkItem,
    ParkedWorkList,
    ReactionBacklog,
    Rearmed,
)
from switchboard.runtime import Runtime, get_runtime

if TYPE_CHECKING:
    from switchboard.auth import DevTokenIssuer

bp = blueprint("system")
_openapi_document: dict[str, object] | None = None


@route(
    bp,
    "GET",
    "health",
    summary="Liveness, store reachability and the reaction backlog (numbers only)",
    response=Health,
    public=True,
    errors=(503,),
)
async def health() -> Health | Reply:
    rt = get_runtime()
    report = await rt.health.check()
    described = rt.describe()
    if not report.ok:
        body = Health(
            status="unavailable",
            store=described["store"],
            identity=described["identity"],
            auth=described["auth"],
        )
        return Reply(body, 503, {"Retry-After": str(report.retry_after)})
    backlog = report.backlog
    reactions = (
        None
        if backlog is None
        else ReactionBacklog(
            pending=backlog.pending,
            parked=backlog.parked,
            oldest_age_seconds=backlog.oldest_age_seconds,
        )
    )
    return Health(
        status="ok",
        store=described["store"],
        identity=described["identity"],
        auth=described["auth"],
        reactions=reactions,
    )


@route(bp, "GET", "openapi.json", summary="This API's OpenAPI 3.1 document", public=True)
async def openapi_document() -> Reply:
    global _openapi_document
    if _openapi_document is None:  # the route table is fixed once the app is composed
        from switchboard.openapi import build_openapi  # pydantic's JSON-schema code: load late

        _openapi_document = build_openapi(ROUTES, title="Switchboard", version="0.1.0")
    return Reply(_openapi_document)


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
    "dev/work",
    public=True,
    response=ParkedWorkList,
    errors=(404,),
    summary="Dev only (AUTH_MODE=dev): reaction work that kept failing and was parked",
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
    summary="Dev only (AUTH_MODE=dev): make every parked work item due again",
)
async def dev_rearm_work() -> Rearmed:
    rt = get_runtime()
    _dev_issuer(rt)
    return Rearmed(rearmed=await rt.reactor.rearm_parked())


def _dev_issuer(rt: Runtime) -> DevTokenIssuer:
    if rt.dev_issuer is None:
        raise errors.NotFound("Dev routes exist only with AUTH_MODE=dev.")
    return rt.dev_issuer
