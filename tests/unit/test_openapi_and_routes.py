"""The OpenAPI document is generated from the route table, valid 3.1, and covers every function;
the devserver's route templates follow the Functions host's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from switchboard.dev.devserver import compile_route, route_prefix
from switchboard.http import ROUTE_PREFIX, ROUTES
from switchboard.openapi import build_openapi
from tests.conftest import app_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def document() -> dict[str, object]:
    app_server()  # importing function_app registers every blueprint's routes
    return build_openapi(ROUTES, title="Switchboard", version="test")


def test_document_is_valid_openapi_31(document: dict[str, object]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_registered_http_function_is_documented(document: dict[str, object]) -> None:
    paths = document["paths"]
    assert isinstance(paths, dict)
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    for fn in app_server().http:
        (method,) = fn.methods
        spec = next(r for r in ROUTES if r.operation_id == fn.name)
        path = f"/{ROUTE_PREFIX}/" + spec.path.replace(":guid", "")
        assert (method, path) in documented, fn.name
    assert len(documented) == len(app_server().http)


def test_contract_routes_present(document: dict[str, object]) -> None:
    paths = document["paths"]
    assert isinstance(paths, dict)
    for method, path in [
        ("post", "/api/token"),
        ("post", "/api/token/revoke"),
        ("post", "/api/token/teams"),
        ("get", "/api/me"),
        ("patch", "/api/me"),
        ("delete", "/api/me"),
        ("get", "/api/health"),
        ("get", "/api/openapi.json"),
        ("post", "/api/dev/login"),
    ]:
        assert method in paths[path], (method, path)


def test_protected_routes_declare_bearer_and_401(document: dict[str, object]) -> None:
    paths = document["paths"]
    assert isinstance(paths, dict)
    open_paths = {"/api/health", "/api/openapi.json", "/api/dev/login", "/api/dev/jwks"}
    open_paths.add("/api/dev/outbox")
    open_paths.add("/api/dev/push")
    open_paths |= {"/api/dev/work", "/api/dev/work/rearm"}
    for path, ops in paths.items():
        for op in ops.values():
            if path in open_paths:
                assert op["security"] == []
            else:
                assert op["security"] == [{"bearer": []}]
                assert "401" in op["responses"]
                assert "application/problem+json" in op["responses"]["401"]["content"]


def test_token_response_has_the_acs_sdk_shape(document: dict[str, object]) -> None:
    components = document["components"]
    assert isinstance(components, dict)
    schema = components["schemas"]["TokenResponse"]
    assert set(schema["required"]) == {"token", "expiresOn", "user", "scopes"}


def test_host_json_prefix_matches_the_code() -> None:
    assert route_prefix(ROOT / "host.json") == ROUTE_PREFIX
    assert json.loads((ROOT / "host.json").read_text())["version"] == "2.0"


@pytest.mark.parametrize(
    ("template", "path", "params"),
    [
        ("token", "/api/token", {}),
        ("token", "/api/token/", {}),
        ("clubs/{clubId}", "/api/clubs/abc", {"clubId": "abc"}),
        (
            "clubs/{clubId:guid}/call",
            "/api/clubs/0f8fad5b-d9cb-469f-a165-70867728950e/call",
            {"clubId": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ),
        ("items/{n:int}", "/api/items/42", {"n": "42"}),
        ("files/{*rest}", "/api/files/a/b/c", {"rest": "a/b/c"}),
        ("friends/{userId?}", "/api/friends", {"userId": None}),
        ("friends/{userId?}", "/api/friends/bob", {"userId": "bob"}),
    ],
)
def test_route_templates_match(template: str, path: str, params: dict[str, str | None]) -> None:
    match = compile_route(template, "api").match(path)
    assert match is not None
    assert match.groupdict() == params


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("clubs/{clubId:guid}/call", "/api/clubs/not-a-guid/call"),
        ("items/{n:int}", "/api/items/x"),
        ("clubs/{clubId}", "/api/clubs/a/b"),
        ("token", "/token"),
        ("token", "/api/tokens"),
    ],
)
def test_route_templates_refuse(template: str, path: str) -> None:
    assert compile_route(template, "api").match(path) is None


def test_functions_host_can_load_every_handler() -> None:
    """What the Python worker does at load: resolve type hints (our modules use postponed
    annotations) and see an async function taking and returning the HTTP types."""
    import inspect
    import typing

    import azure.functions as func

    for fn in app_server().http:
        hints = typing.get_type_hints(fn.handler)
        assert hints[fn.arg_name] is func.HttpRequest, fn.name
        assert hints["return"] is func.HttpResponse, fn.name
        assert list(inspect.signature(fn.handler).parameters) == [fn.arg_name], fn.name
        assert inspect.iscoroutinefunction(fn.handler), fn.name


def test_every_status_the_app_answers_is_documented(document: dict[str, object]) -> None:
    """500 (logged, generic) and 405 (another method on the path) can follow any request."""
    paths = document["paths"]
    assert isinstance(paths, dict)
    for path, ops in paths.items():
        for method, op in ops.items():
            for status in ("405", "500"):
                content = op["responses"][status]["content"]
                assert "application/problem+json" in content, (method, path, status)
            if "requestBody" in op:
                assert {"400", "413", "415"} <= set(op["responses"]), (method, path)


def test_document_names_a_relative_server(document: dict[str, object]) -> None:
    assert document["servers"] == [{"url": "/"}]


def test_one_tag_per_blueprint_and_unique_operation_ids(document: dict[str, object]) -> None:
    paths = document["paths"]
    assert isinstance(paths, dict)
    ops = [op for item in paths.values() for op in item.values()]
    ids = [op["operationId"] for op in ops]
    assert len(ids) == len(set(ids))
    tags = {op["operationId"]: op["tags"] for op in ops}
    assert tags["issue_token"] == ["identity"]
    assert tags["health"] == ["system"]
    assert all(len(t) == 1 for t in tags.values())


def test_routes_declare_model_classes_not_names() -> None:
    from pydantic import BaseModel

    app_server()
    for spec in ROUTES:
        for declared in (spec.body, spec.query, spec.response):
            assert declared is None or issubclass(declared, BaseModel), spec.operation_id
