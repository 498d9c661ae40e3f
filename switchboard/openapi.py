"""The OpenAPI 3.1 document, generated from the route table and the pydantic models.

Nothing here is written by hand per route: `switchboard.http.route` records each route's
declaration (method, path, model classes, error statuses, public or not) — the same declaration
that authenticates and parses at request time — and this module turns that table into the
document. Every status the app can answer is in it: each operation's own, 400/413/415 where it
takes input, 401 unless public, 405 (another method on the path) and 500 everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from switchboard.http import ROUTE_PREFIX, RouteSpec
from switchboard.models import ProblemDetails

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?(\?)?\}")
_CONSTRAINT_FORMATS = {"guid": {"type": "string", "format": "uuid"}, "int": {"type": "integer"}}
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Invalid input",
    401: "No or invalid credentials",
    403: "Not allowed",
    404: "Not found or not visible to the caller",
    405: "Method not allowed on this path",
    409: "Conflict",
    413: "Body too large (64 KiB)",
    415: "Body is not JSON",
    429: "Too many requests",
    500: "Internal error (logged; the answer carries no detail)",
    503: "A dependency is unavailable; retry after Retry-After seconds",
}


def build_openapi(routes: Iterable[RouteSpec], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI document of `routes`."""
    routes = list(routes)
    schemas, refs = _component_schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path, params = _openapi_path(route)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, params, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Switchboard: the trusted control plane for Azure Communication "
            "Services apps. Errors are application/problem+json with a stable `code`.",
        },
        "servers": [{"url": "/"}],  # relative: the document is served by the API it describes
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _component_schemas(
    routes: list[RouteSpec],
) -> tuple[dict[str, Any], dict[tuple[type[BaseModel], str], dict[str, Any]]]:
    wanted: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (ProblemDetails, "serialization")
    ]
    for route in routes:
        if route.body is not None:
            wanted.append((route.body, "validation"))
        if route.response is not None:
            wanted.append((route.response, "serialization"))
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(
        unique, by_alias=True, ref_template="#/components/schemas/{model}"
    )
    return top.get("$defs", {}), {(model, mode): ref for (model, mode), ref in refs.items()}  # type: ignore[misc]


def _openapi_path(route: RouteSpec) -> tuple[str, list[dict[str, Any]]]:
    params: list[dict[str, Any]] = []

    def replace(match: re.Match[str]) -> str:
        _, name, constraint, _optional = match.groups()
        schema: dict[str, Any] = dict(_CONSTRAINT_FORMATS.get(constraint or "", {"type": "string"}))
        if schema.get("type") == "string":
            schema |= {"minLength": 1, "maxLength": 128}  # the path id rule (http.PATH_ID_RULE)
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return f"/{ROUTE_PREFIX}/" + _PARAM.sub(replace, route.path), params


def _operation(
    route: RouteSpec,
    path_params: list[dict[str, Any]],
    refs: dict[tuple[type[BaseModel], str], dict[str, Any]],
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    parameters = list(path_params)
    if route.query is not None:
        schema = route.query.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": _STATUS_TEXT.get(route.status, "OK")}
    if route.response is not None:
        success["content"] = {
            "application/json": {"schema": refs[(route.response, "serialization")]}
        }
    responses: dict[str, Any] = {str(route.status): success}
    problem_ref = refs[(ProblemDetails, "serialization")]
    statuses = set(route.errors) | {405, 500}
    if not route.public:
        statuses |= {401, 503}
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
    if route.body is not None:
        statuses |= {400, 413, 415}
    if route.query is not None or path_params:
        statuses.add(400)
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {"application/problem+json": {"schema": problem_ref}},
        }
    op["responses"] = responses
    return op


def main(argv: list[str] | None = None) -> None:
    """`python -m switchboard.openapi OUT`: write the app's document (as GET /api/openapi.json
    answers it) to OUT — the web client's typed API is generated from that file (make web-api)."""
    import json
    import sys
    from pathlib import Path

    import function_app  # noqa: F401  (registers every blueprint's routes)
    from switchboard.http import ROUTES

    (out,) = (argv if argv is not None else sys.argv[1:]) or ["-"]
    text = json.dumps(build_openapi(ROUTES, title="Switchboard", version="0.1.0"), indent=2)
    if out == "-":
        print(text)
    else:
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    main()
