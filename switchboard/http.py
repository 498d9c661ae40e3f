"""HTTP plumbing shared by every blueprint: the route table, body parsing, JSON and problem answers.

`api_route` registers a handler with its blueprint *and* in `ROUTES`, the table the OpenAPI
document is generated from, so a route cannot exist without being documented. It also wraps the
handler with the one error table (`ERROR_TABLE`): a `SwitchboardError` becomes an
`application/problem+json` answer with its stable code; anything else is logged with its
traceback and answered with a generic 500.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import azure.functions as func

from switchboard import errors
from switchboard.logs import safe

if TYPE_CHECKING:
    # pydantic is imported at first use, not with the app (see switchboard.lazy).
    from pydantic import BaseModel, ValidationError

log = logging.getLogger("switchboard.http")

ROUTE_PREFIX = "api"  # host.json extensions.http.routePrefix; a test keeps the two equal
MAX_BODY_BYTES = 64 * 1024
JSON_TYPE = "application/json"
PROBLEM_TYPE = "application/problem+json"

# The one error table: exception class → (status, title). The most specific class wins (MRO).
ERROR_TABLE: dict[type[errors.SwitchboardError], tuple[int, str]] = {
    errors.InvalidInput: (400, "Invalid input"),
    errors.InvalidJson: (400, "Malformed JSON"),
    errors.InvalidScope: (400, "Unknown scope"),
    errors.InvalidTeamsToken: (400, "Teams token refused"),
    errors.Unauthenticated: (401, "Authentication required"),
    errors.Forbidden: (403, "Forbidden"),
    errors.ScopeNotAllowed: (403, "Scope not allowed"),
    errors.NotFoundError: (404, "Not found"),
    errors.TeamsNotConfigured: (404, "Teams token exchange not configured"),
    errors.ConflictError: (409, "Conflict"),
    errors.PayloadTooLarge: (413, "Payload too large"),
    errors.UnsupportedMediaType: (415, "Unsupported media type"),
    errors.TooManyRequests: (429, "Too many requests"),
    errors.DependencyUnavailable: (503, "Service unavailable"),
}

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]
M = TypeVar("M", bound="BaseModel")


@dataclass(frozen=True)
class RouteSpec:
    """One HTTP route as the OpenAPI document describes it."""

    method: str
    path: str  # Functions route template without the /api prefix, e.g. "clubs/{clubId}"
    operation_id: str
    summary: str
    tag: str
    # Models by their name in switchboard.models, resolved when the OpenAPI document is built.
    request: str | None = None
    body_required: bool = True
    query: str | None = None
    response: str | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    auth: bool = True
    path_params: Mapping[str, str] = field(default_factory=dict)


ROUTES: list[RouteSpec] = []


def blueprint() -> func.Blueprint:
    """A new blueprint (azure.functions leaves its constructor untyped)."""
    return func.Blueprint()  # type: ignore[no-untyped-call]


def api_route(
    bp: func.Blueprint,
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    request: str | None = None,
    body_required: bool = True,
    query: str | None = None,
    response: str | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    auth: bool = True,
    path_params: Mapping[str, str] | None = None,
) -> Callable[[Handler], Handler]:
    """Register `handler` at `method path` on `bp`, in the route table, behind the error table."""

    def decorate(handler: Handler) -> Handler:
        ROUTES.append(
            RouteSpec(
                method=method,
                path=path,
                operation_id=handler.__name__,
                summary=summary,
                tag=tag,
                request=request,
                body_required=body_required,
                query=query,
                response=response,
                status=status,
                errors=errors,
                auth=auth,
                path_params=dict(path_params or {}),
            )
        )
        wrapped = with_error_table(handler)
        bp.route(route=path, methods=[method], auth_level=func.AuthLevel.ANONYMOUS)(wrapped)
        return wrapped

    return decorate


def with_error_table(handler: Handler) -> Handler:
    """Turn exceptions into problem responses: known ones by the table, the rest as a 500."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return await handler(req)
        except errors.SwitchboardError as exc:
            return problem_for(exc)
        except errors.ConfigurationError as exc:
            # Settings are validated when the runtime is first built (the devserver does it at
            # start-up; under the Functions host, at the first request, to keep cold start
            # lean). The log names the setting; the caller learns only that it is not their fault.
            log.critical("Switchboard is misconfigured: %s", exc)
            return problem(
                500, "misconfigured", "Service misconfigured", "The service is misconfigured."
            )
        except Exception:
            log.exception("unhandled error in %s %s", safe(req.method), safe(_path_of(req)))
            return problem(500, "internal_error", "Internal error", "Something went wrong.")

    return wrapper


def problem_for(exc: errors.SwitchboardError) -> func.HttpResponse:
    """The problem response for a domain error, by the one error table."""
    status, title = 500, "Internal error"
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            status, title = ERROR_TABLE[cls]
            break
    headers: dict[str, str] = {}
    if isinstance(exc, errors.MissingCredentials):
        headers["WWW-Authenticate"] = 'Bearer realm="switchboard"'
    elif isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="switchboard", error="invalid_token"'
    if isinstance(exc, errors.DependencyUnavailable | errors.TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    extra = {"field": exc.field} if exc.field else {}
    return problem(status, exc.code, title, exc.detail, headers=headers, **extra)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> func.HttpResponse:
    """An RFC 9457 problem response with Switchboard's stable `code` member."""
    body = {
        # A URN: it names the problem without pointing at a web page or a domain.
        "type": f"urn:switchboard:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return func.HttpResponse(
        json.dumps(body),
        status_code=status,
        mimetype=PROBLEM_TYPE,
        headers=dict(headers or {}),
    )


def json_response(
    body: BaseModel | Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    """A JSON response; models serialise with their camelCase aliases."""
    text = (
        body.model_dump_json(by_alias=True)
        if not isinstance(body, Mapping)
        else json.dumps(body, separators=(",", ":"))
    )
    return func.HttpResponse(
        text, status_code=status, mimetype=JSON_TYPE, headers=dict(headers or {})
    )


def no_content() -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


def parse_body(req: func.HttpRequest, model: type[M]) -> M:
    """The request body as `model`: 415 unless JSON, 413 over 64 KiB, 400 naming the bad field."""
    parsed = parse_optional_body(req, model)
    if parsed is None:
        raise errors.InvalidInput("A JSON body is required.")
    return parsed


def parse_optional_body(req: func.HttpRequest, model: type[M]) -> M | None:
    """Like `parse_body`, but an empty body is allowed and gives None."""
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY_BYTES:
        raise errors.PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
    if not raw.strip():
        return None
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != JSON_TYPE and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise errors.UnsupportedMediaType("Send the body as application/json.")
    from pydantic import ValidationError

    # Validated straight from the bytes in strict JSON mode: one parse, no type coercion
    # ("60" is not 60), ISO-8601 strings for datetimes.
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise errors.InvalidJson("The body is not valid JSON.") from None
        raise _invalid_input(exc) from None


def parse_query(req: func.HttpRequest, model: type[M]) -> M:
    """The query string as `model` (each parameter once); 400 naming the bad parameter."""
    return validate(model, dict(req.params), strict=False)


def validate(model: type[M], data: Any, *, strict: bool = True) -> M:
    """Validate plain data as `model`, turning the first problem into InvalidInput."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise _invalid_input(exc) from None


def _invalid_input(exc: ValidationError) -> errors.InvalidInput:
    """The first validation problem, naming its field by the name clients use."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or None
    detail = f"{where}: {first['msg']}" if where else first["msg"]
    return errors.InvalidInput(detail, field=where)


def _path_of(req: func.HttpRequest) -> str:
    # Only the path: query strings may carry things (continuation tokens) that logs need not.
    url = req.url or ""
    path = url.split("://", 1)[-1]
    path = path[path.find("/") :] if "/" in path else "/"
    return path.split("?", 1)[0]
