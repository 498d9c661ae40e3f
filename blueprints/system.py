"""System routes: health and the OpenAPI document (docs/architecture.md#http-api)."""

from __future__ import annotations

from switchboard.http import ROUTES, Reply, blueprint, route
from switchboard.models.system import Health
from switchboard.runtime import get_runtime

bp = blueprint("system")
_openapi_document: dict[str, object] | None = None


@route(
    bp,
    "GET",
    "health",
    summary="Liveness and store reachability",
    response=Health,
    public=True,
    errors=(503,),
)
async def health() -> Health | Reply:
    rt = get_runtime()
    report = await rt.health.check()
    if not report.ok:
        body = Health(status="unavailable", **rt.describe())
        return Reply(body, 503, {"Retry-After": str(report.retry_after)})
    return Health(status="ok", **rt.describe())


@route(bp, "GET", "openapi.json", summary="This API's OpenAPI 3.1 document", public=True)
async def openapi_document() -> Reply:
    global _openapi_document
    if _openapi_document is None:  # the route table is fixed once the app is composed
        from switchboard.openapi import build_openapi  # pydantic's JSON-schema code: load late

        _openapi_document = build_openapi(ROUTES, title="Switchboard", version="0.1.0")
    return Reply(_openapi_document)
