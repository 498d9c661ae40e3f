"""The route decorator and HTTP plumbing shared by every blueprint.

See docs/architecture.md#layers and docs/architecture.md#http-api.

`route` is the one way to add an HTTP route. Its declaration is the truth, used three times:
- at request time it authenticates (unless the route is declared `public=True`), parses the body
  and the query string into the declared model classes, checks path ids, and calls the handler
  with `caller=`, `body=`, `query=` and each path parameter by name;
- at registration it checks that the handler's signature names exactly those inputs, so a route
  cannot take a body it does not declare, nor skip the caller it needs;
- the OpenAPI document (`switchboard.openapi`) is generated from the same `RouteSpec`.

A handler therefore cannot forget authentication: a non-public route's handler is only ever
called with an authenticated caller. Errors are domain exceptions carrying their own status,
title and code (`switchboard.errors`); anything else is logged with its traceback and answered
with a generic 500. The function registered with the Functions worker keeps the one-argument
signature `(req: func.HttpRequest) -> func.HttpResponse` the worker requires.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, Union

import azure.functions as func
from pydantic import BaseModel, ValidationError

from switchboard import errors, ids, telemetry
from switchboard.logs import safe, safe_path
from switchboard.services.caller import CURRENT_CALLER

if TYPE_CHECKING:
    from switchboard.services.caller import Caller

log = logging.getLogger("switchboard.http")

ROUTE_PREFIX = "api"  # host.json extensions.http.routePrefix; a test keeps the two equal
MAX_BODY_BYTES = 64 * 1024
JSON_TYPE = "application/json"
PROBLEM_TYPE = "application/problem+json"

# The one id rule (switchboard.ids) checks every path parameter before its handler runs, as it
# checks token subjects and ids in bodies: one rule before any id reaches a store key, URL or log.
PATH_ID_RULE: Callable[[str], bool] = ids.is_valid_id

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]
_PARAM = re.compile(r"\{\*?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\??\}")


@dataclass(frozen=True)
class Reply:
    """A handler's answer when the declared model and status are not the whole story.

    `body` is what the handler would otherwise return: a model, a mapping, or a service view
    that the decorator validates into the route's declared response model.
    """

    body: object = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


no_content = Reply(status=204)


@dataclass(frozen=True)
class RouteSpec:
    """One HTTP route as declared: what the decorator enforces and OpenAPI describes."""

    method: str
    path: str  # Functions route template without the /api prefix, e.g. "clubs/{clubId}"
    operation_id: str
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    public: bool = False
    path_params: tuple[str, ...] = ()
    registers_caller: bool = True


ROUTES: list[RouteSpec] = []
_TAGS: dict[int, str] = {}


def blueprint(tag: str) -> func.Blueprint:
    """A new blueprint for one capability; every route on it carries `tag` in OpenAPI."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]  # azure.functions leaves it untyped
    _TAGS[id(bp)] = tag
    return bp


def route(
    bp: func.Blueprint,
    method: str,
    path: str,
    *,
    summary: str,
    body: type[BaseModel] | types.UnionType | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    public: bool = False,
    registers_caller: bool = True,
) -> Callable[[Callable[..., Awaitable[object]]], Endpoint]:
    """Declare and register a route; `body=Model | None` declares an optional body.

    A user exists from their first authenticated request (docs/architecture.md#http-api): once a
    request has
    succeeded, the runtime makes sure the caller has a profile (a refused one changes nothing).
    `registers_caller=False` is for the identity routes, whose service creates (or erases) the
    profile itself.
    """
    body_model, body_required = _body_declaration(body)
    path_params = tuple(_PARAM.findall(path))

    def decorate(handler: Callable[..., Awaitable[object]]) -> Endpoint:
        spec = RouteSpec(
            method=method,
            path=path,
            operation_id=handler.__name__,
            summary=summary,
            tag=_TAGS.get(id(bp), "default"),
            body=body_model,
            body_required=body_required,
            query=query,
            response=response,
            status=status,
            errors=errors,
            public=public,
            path_params=path_params,
            registers_caller=registers_caller,
        )
        _check_signature(spec, handler)
        if any(r.operation_id == spec.operation_id for r in ROUTES):
            raise ValueError(f"duplicate operation id {spec.operation_id!r}")
        endpoint = _endpoint(spec, handler)
        bp.route(route=path, methods=[method], auth_level=func.AuthLevel.ANONYMOUS)(endpoint)
        ROUTES.append(spec)
        return endpoint

    return decorate


def _body_declaration(body: object) -> tuple[type[BaseModel] | None, bool]:
    if body is None:
        return None, True
    if isinstance(body, type) and issubclass(body, BaseModel):
        return body, True
    if typing.get_origin(body) in (Union, types.UnionType):
        members = [a for a in typing.get_args(body) if a is not type(None)]
        if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], BaseModel):
            return members[0], False
    raise TypeError(f"body must be a model class or `Model | None`, not {body!r}")


def _check_signature(spec: RouteSpec, handler: Callable[..., object]) -> None:
    """The handler's parameters are exactly the declared inputs, by name."""
    wanted = set(spec.path_params)
    if not spec.public:
        wanted.add("caller")
    if spec.body is not None:
        wanted.add("body")
    if spec.query is not None:
        wanted.add("query")
    got = set(inspect.signature(handler).parameters)
    if got != wanted:
        raise TypeError(
            f"{spec.operation_id}: the handler takes {sorted(got)}, the route declares "
            f"{sorted(wanted)}"
        )
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"{spec.operation_id}: handlers are async def")


def _endpoint(spec: RouteSpec, handler: Callable[..., Awaitable[object]]) -> Endpoint:
    async def endpoint(req: func.HttpRequest) -> func.HttpResponse:
        # One span per request when telemetry is on (a shared no-op when off).
        with telemetry.server_span(spec.operation_id, spec.method, spec.path) as span:
            response = await serve(req)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def serve(req: func.HttpRequest) -> func.HttpResponse:
        served = CURRENT_CALLER.set(None)
        try:
            kwargs = await _inputs(spec, req)
            answer = _answer(spec, await handler(**kwargs))
            if not spec.public and spec.registers_caller:
                await _register(kwargs["caller"])
            return answer
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
            log.exception("unhandled error in %s %s", safe(req.method), safe_path(_path_of(req)))
            return problem(500, "internal_error", "Internal error", "Something went wrong.")
        finally:
            CURRENT_CALLER.reset(served)

    # Not functools.wraps: the worker reads the registered function's signature and annotations,
    # which must stay the one `req` parameter; only the name (the function's name) is carried.
    endpoint.__name__ = handler.__name__
    endpoint.__qualname__ = handler.__qualname__
    endpoint.__doc__ = handler.__doc__
    return endpoint


async def _register(caller: Caller) -> None:
    """Make sure the caller has a profile, after their request succeeded (so a refused request
    changes nothing). A failure here does not undo or fail what the request did: the next
    request tries again."""
    from switchboard.runtime import get_runtime

    try:
        await get_runtime().register(caller)
    except errors.ErasureInProgress:
        log.info("the caller's erasure is being completed; not registered")
    except errors.DependencyUnavailable:
        log.warning("could not register the caller's profile; the next request will")


async def _inputs(spec: RouteSpec, req: func.HttpRequest) -> dict[str, Any]:
    """The handler's keyword arguments, in the order a client's mistakes are reported."""
    kwargs: dict[str, Any] = {}
    if not spec.public:
        from switchboard.runtime import get_runtime  # the composition root sits above http

        kwargs["caller"] = await get_runtime().authenticate(req.headers)
        CURRENT_CALLER.set(kwargs["caller"])
    for name in spec.path_params:
        value = req.route_params.get(name, "")
        if not PATH_ID_RULE(value):
            raise errors.InvalidInput(f"{name}: not a valid id", field=name)
        kwargs[name] = value
    if spec.query is not None:
        kwargs["query"] = parse_query(req, spec.query)
    if spec.body is not None:
        kwargs["body"] = (
            parse_body(req, spec.body)
            if spec.body_required
            else parse_optional_body(req, spec.body)
        )
    return kwargs


def _answer(spec: RouteSpec, result: object) -> func.HttpResponse:
    reply = result if isinstance(result, Reply) else Reply(result, spec.status)
    if reply.body is None:
        return func.HttpResponse(status_code=reply.status, headers=dict(reply.headers))
    return json_response(shaped(spec, reply.body), reply.status, reply.headers)


def shaped(spec: RouteSpec, body: object) -> BaseModel | Mapping[str, Any]:
    """The handler's answer as the route's declared response model.

    A handler returns what its service gives (a view: a dataclass whose fields are the wire
    model's, snake_case); the model is validated from its attributes here, so every entity has
    one shape family (view → wire model) and no route maps fields by hand. An answer that does
    not fit the declared model fails here, as a 500 that logs which field, never as a response
    that differs from the OpenAPI document. A route without a response model (the OpenAPI
    document itself) answers a mapping as it is.
    """
    if spec.response is None:
        if isinstance(body, BaseModel | Mapping):
            return body
        raise TypeError(f"{spec.operation_id} declares no response model for a {type(body)}")
    if type(body) is spec.response:
        return body  # built (and so validated) by the handler
    return spec.response.model_validate(body, from_attributes=True)


def problem_for(exc: errors.SwitchboardError) -> func.HttpResponse:
    """The problem response for a domain error, from the error's own status, title and code."""
    headers: dict[str, str] = {}
    if isinstance(exc, errors.MissingCredentials):
        headers["WWW-Authenticate"] = 'Bearer realm="switchboard"'
    elif isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="switchboard", error="invalid_token"'
    if isinstance(
        exc, errors.DependencyUnavailable | errors.TooManyRequests | errors.ErasureInProgress
    ):
        headers["Retry-After"] = str(exc.retry_after)
    extra = {**exc.extra, **({"field": exc.field} if exc.field else {})}
    return problem(exc.status, exc.code, exc.title, exc.detail, headers=headers, **extra)


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
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise _invalid_input(exc) from None


def _invalid_input(exc: ValidationError) -> errors.InvalidInput:
    """The first validation problem, naming its field by the name clients use."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or None
    detail = f"{where}: {first['msg']}" if where else first["msg"]
    if first["type"] == "invalid_text":  # the text rule (switchboard.text): its own code
        return errors.InvalidText(detail, field=where)
    return errors.InvalidInput(detail, field=where)


def _path_of(req: func.HttpRequest) -> str:
    # Only the path: query strings may carry things (continuation tokens) that logs need not.
    url = req.url or ""
    path = url.split("://", 1)[-1]
    path = path[path.find("/") :] if "/" in path else "/"
    return path.split("?", 1)[0]
