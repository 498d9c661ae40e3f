"""System routes: health and the OpenAPI document (docs/architecture.md#http-api)."""

from __future__ import annotations

from switchboard.http import ROUTES, Reply, blueprint, route
from switchboard.models.system import Health, ReactionBacklog
from switchboard.runtime import get_runtime

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
