"""System routes: health, the OpenAPI document, and the dev-mode sign-in (DESIGN §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from switchboard import errors
from switchboard.http import ROUTES, api_route, blueprint, json_response, parse_body
from switchboard.lazy import lazy_module
from switchboard.runtime import Runtime, get_runtime

if TYPE_CHECKING:
    from switchboard import models
    from switchboard.auth import DevTokenIssuer
else:
    models = lazy_module("switchboard.models")

bp = blueprint()
TAG = "system"
_openapi_document: dict[str, object] | None = None


@api_route(
    bp,
    "GET",
    "health",
    tag=TAG,
    summary="Liveness and store reachability",
    response="Health",
    auth=False,
    errors=(503,),
)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    rt = get_runtime()
    report = await rt.health.check()
    if not report.ok:
        body = models.Health(status="unavailable", **rt.describe())
        return json_response(body, status=503, headers={"Retry-After": str(report.retry_after)})
    return json_response(models.Health(status="ok", **rt.describe()))


@api_route(
    bp, "GET", "openapi.json", tag=TAG, summary="This API's OpenAPI 3.1 document", auth=False
)
async def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    global _openapi_document
    if _openapi_document is None:  # the route table is fixed once the app is composed
        from switchboard.openapi import build_openapi  # pydantic's JSON-schema code: load late

        _openapi_document = build_openapi(ROUTES, title="Switchboard", version="0.1.0")
    return json_response(_openapi_document)


@api_route(
    bp,
    "POST",
    "dev/login",
    tag=TAG,
    auth=False,
    request="DevLoginRequest",
    response="DevLoginResponse",
    errors=(404,),
    summary="Dev sign-in (AUTH_MODE=dev only): an app token for any user id",
)
async def dev_login(req: func.HttpRequest) -> func.HttpResponse:
    issuer = _dev_issuer(get_runtime())
    body = parse_body(req, models.DevLoginRequest)
    token, lifetime = issuer.issue(body.user_id, body.display_name)
    return json_response(
        models.DevLoginResponse(access_token=token, expires_in=lifetime),
        headers={"Cache-Control": "no-store"},
    )


@api_route(
    bp,
    "GET",
    "dev/jwks",
    tag=TAG,
    auth=False,
    response="Jwks",
    errors=(404,),
    summary="Dev sign-in's public keys (AUTH_MODE=dev only), as an OIDC issuer serves them",
)
async def dev_jwks(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(_dev_issuer(get_runtime()).jwks())


def _dev_issuer(rt: Runtime) -> DevTokenIssuer:
    if rt.dev_issuer is None:
        raise errors.NotFoundError("Dev routes exist only with AUTH_MODE=dev.")
    return rt.dev_issuer
