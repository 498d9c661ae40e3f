"""The route decorator: the declaration is what runs. A non-public handler never runs without a
caller, input problems are answered before the handler, path ids pass one rule, and a handler
whose signature disagrees with its declaration (or reuses an operation id) is refused at
registration. A handler's answer (a service view) is validated into its declared response model."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest
from pydantic import Field

from switchboard import errors, http
from switchboard.http import ROUTES, Reply, blueprint, no_content, route
from switchboard.models import ApiModel, RequestModel
from switchboard.models.clubs import ActiveCall
from switchboard.runtime import Runtime
from switchboard.services.caller import Caller


class Thing(RequestModel):
    name: str = Field(min_length=1, max_length=8)


class Page(RequestModel):
    limit: int = Field(10, ge=1, le=100)


@pytest.fixture(autouse=True)
def _own_route_table() -> Iterator[None]:
    # These routes exist only in this module: keep them out of the app's OpenAPI table.
    saved = list(ROUTES)
    yield
    ROUTES[:] = saved


def _request(
    method: str = "POST",
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
) -> func.HttpRequest:
    return func.HttpRequest(
        method=method,
        url="http://localhost/api/t",
        headers=headers or {},
        params=params or {},
        route_params=route_params or {},
        body=body,
    )


def _problem(resp: func.HttpResponse) -> dict[str, Any]:
    assert resp.mimetype == "application/problem+json"
    body: dict[str, Any] = json.loads(resp.get_body())
    assert body["status"] == resp.status_code
    return body


async def test_non_public_route_answers_401_and_never_runs_its_handler(runtime: Runtime) -> None:
    ran: list[Caller] = []

    @route(blueprint("t"), "POST", "t/private", summary="s")
    async def t_private(caller: Caller) -> Reply:
        ran.append(caller)
        return no_content

    for headers in ({}, {"Authorization": "Bearer a.b.c"}):
        resp = await t_private(_request(headers=headers))
        assert resp.status_code == 401
        assert _problem(resp)["code"] == "unauthenticated"
    assert ran == []

    assert runtime.adapters.dev_issuer is not None
    token, _ = runtime.adapters.dev_issuer.issue("alice", "Alice")
    resp = await t_private(_request(headers={"Authorization": f"Bearer {token}"}))
    assert resp.status_code == 204
    assert [c.user_id for c in ran] == ["alice"]


async def test_public_route_gets_no_caller_and_needs_no_credentials() -> None:
    @route(blueprint("t"), "GET", "t/public", summary="s", public=True)
    async def t_public() -> Reply:
        return Reply({"ok": True}, 202, {"X-Test": "1"})

    resp = await t_public(_request("GET"))
    assert resp.status_code == 202
    assert json.loads(resp.get_body()) == {"ok": True}
    assert resp.headers["X-Test"] == "1"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"", "application/json", 400, "invalid_input"),
        (b"{", "application/json", 400, "invalid_json"),
        (b'{"name": ""}', "application/json", 400, "invalid_input"),
        (b'{"name": "a", "extra": 1}', "application/json", 400, "invalid_input"),
        (b'{"name": "a"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"name": "' + b"a" * (64 * 1024) + b'"}', "application/json", 413, "payload_too_large"),
    ],
)
async def test_body_problems_are_answered_before_the_handler(
    body: bytes, content_type: str, status: int, code: str
) -> None:
    ran: list[Thing] = []

    @route(blueprint("t"), "POST", "t/body", summary="s", public=True, body=Thing, response=Thing)
    async def t_body(body: Thing) -> Thing:
        ran.append(body)
        return body

    resp = await t_body(_request(body=body, headers={"content-type": content_type}))
    assert resp.status_code == status
    assert _problem(resp)["code"] == code
    assert ran == []


async def test_body_parsed_into_the_declared_class_and_answered_with_its_status() -> None:
    @route(blueprint("t"), "POST", "t/made", summary="s", public=True, body=Thing, status=201)
    async def t_made(body: Thing) -> Thing:
        assert isinstance(body, Thing)
        return body

    resp = await t_made(
        _request(body=b'{"name": "x"}', headers={"content-type": "application/json"})
    )
    assert resp.status_code == 201
    assert json.loads(resp.get_body()) == {"name": "x"}


async def test_optional_body_may_be_empty() -> None:
    seen: list[Thing | None] = []

    @route(blueprint("t"), "POST", "t/opt", summary="s", public=True, body=Thing | None)
    async def t_opt(body: Thing | None) -> Reply:
        seen.append(body)
        return no_content

    assert (await t_opt(_request())).status_code == 204
    assert seen == [None]
    assert ROUTES[-1].body is Thing
    assert ROUTES[-1].body_required is False


async def test_query_parsed_into_the_declared_class() -> None:
    seen: list[int] = []

    @route(blueprint("t"), "GET", "t/query", summary="s", public=True, query=Page)
    async def t_query(query: Page) -> Reply:
        seen.append(query.limit)
        return no_content

    assert (await t_query(_request("GET", params={"limit": "5"}))).status_code == 204
    assert (await t_query(_request("GET"))).status_code == 204
    bad = await t_query(_request("GET", params={"limit": "0"}))
    assert bad.status_code == 400
    assert _problem(bad)["field"] == "limit"
    assert seen == [5, 10]


@pytest.mark.parametrize("bad", [".", "..", "a/b", "a\\b", "a?b", "a#b", "a\nb", " a", "x" * 129])
async def test_path_ids_pass_the_id_rule_before_the_handler(bad: str) -> None:
    seen: list[str] = []

    @route(blueprint("t"), "GET", "t/items/{itemId}", summary="s", public=True)
    async def t_item(itemId: str) -> Reply:
        seen.append(itemId)
        return no_content

    resp = await t_item(_request("GET", route_params={"itemId": bad}))
    assert resp.status_code == 400
    assert _problem(resp)["field"] == "itemId"
    assert (await t_item(_request("GET", route_params={"itemId": "ok-1"}))).status_code == 204
    assert seen == ["ok-1"]


async def test_path_id_rule_is_one_replaceable_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    @route(blueprint("t"), "GET", "t/hook/{itemId}", summary="s", public=True)
    async def t_hook(itemId: str) -> Reply:
        return no_content

    req = _request("GET", route_params={"itemId": "alice"})
    assert (await t_hook(req)).status_code == 204
    monkeypatch.setattr(http, "PATH_ID_RULE", lambda value: value != "alice")
    assert (await t_hook(req)).status_code == 400


async def test_errors_carry_their_own_status_title_and_code() -> None:
    @route(blueprint("t"), "GET", "t/err", summary="s", public=True)
    async def t_err() -> Reply:
        raise errors.TeamsNotConfigured("no")

    body = _problem(await t_err(_request("GET")))
    assert (body["status"], body["title"], body["code"]) == (
        404,
        "Teams token exchange not configured",
        "teams_not_configured",
    )


def test_duplicate_operation_id_is_refused_at_registration() -> None:
    bp = blueprint("t")

    @route(bp, "GET", "t/dup", summary="s", public=True)
    async def t_dup() -> Reply:
        return no_content

    with pytest.raises(ValueError, match="duplicate operation id 't_dup'"):

        @route(bp, "POST", "t/dup", summary="s", public=True)
        async def t_dup() -> Reply:
            return no_content


@pytest.mark.parametrize(
    ("public", "body", "path"),
    [
        (False, None, "t/sig"),  # non-public: the handler must take the caller
        (True, Thing, "t/sig"),  # declared body: the handler must take it
        (True, None, "t/sig/{id}"),  # path parameter: the handler must take it
    ],
)
def test_handler_must_take_exactly_the_declared_inputs(
    public: bool, body: type[Thing] | None, path: str
) -> None:
    with pytest.raises(TypeError, match="declares"):

        @route(blueprint("t"), "GET", path, summary="s", public=public, body=body)
        async def t_sig() -> Reply:
            return no_content


def test_registered_function_keeps_the_one_argument_worker_signature() -> None:
    import inspect
    import typing

    @route(blueprint("t"), "POST", "t/worker", summary="s", body=Thing)
    async def t_worker(caller: Caller, body: Thing) -> Reply:
        return no_content

    assert list(inspect.signature(t_worker).parameters) == ["req"]
    hints = typing.get_type_hints(t_worker)
    assert hints == {"req": func.HttpRequest, "return": func.HttpResponse}


@dataclasses.dataclass(frozen=True)
class _CallView:
    """A service view: the wire model's fields, snake_case, nothing of HTTP."""

    group_call_id: str
    started_by: str
    started_at: datetime


@dataclasses.dataclass(frozen=True)
class _CallPageView:
    items: list[_CallView]
    continuation: str | None


class _CallPage(ApiModel):
    items: list[ActiveCall]
    continuation: str | None


async def test_a_returned_view_becomes_the_declared_response_model() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    view = _CallView("0b5c2c6e-1111-4222-8333-944445555666", "alice", when)

    @route(blueprint("t"), "GET", "t/view", summary="s", public=True, response=_CallPage)
    async def t_view() -> _CallPageView:
        return _CallPageView([view], None)

    resp = await t_view(_request("GET"))
    assert resp.status_code == 200
    assert json.loads(resp.get_body()) == {
        "items": [
            {
                "groupCallId": view.group_call_id,
                "startedBy": "alice",
                "startedAt": "2026-01-02T03:04:05Z",
            }
        ],
        "continuation": None,
    }
    # docs/architecture.md's "adding a capability" mapping, by hand: the same thing.
    assert ActiveCall.model_validate(view).started_by == "alice"


async def test_an_answer_that_does_not_fit_its_model_is_a_500_not_a_drifted_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Drifted:
        group_call_id: str
        started_by: str  # started_at is missing

    @route(blueprint("t"), "GET", "t/drift", summary="s", public=True, response=ActiveCall)
    async def t_drift() -> Drifted:
        return Drifted("x", "alice")

    @route(blueprint("t"), "GET", "t/reply-drift", summary="s", public=True, response=ActiveCall)
    async def t_reply_drift() -> Reply:
        return Reply({"groupCallId": "x"}, headers={"X-Test": "1"})

    for handler in (t_drift, t_reply_drift):
        resp = await handler(_request("GET"))
        assert resp.status_code == 500
        assert _problem(resp)["code"] == "internal_error"
    assert "started_at" in caplog.text or "startedAt" in caplog.text


async def test_a_route_without_a_response_model_answers_only_models_and_mappings() -> None:
    @route(blueprint("t"), "GET", "t/untyped", summary="s", public=True)
    async def t_untyped() -> object:
        return _CallView("x", "alice", datetime.now(UTC))

    resp = await t_untyped(_request("GET"))
    assert resp.status_code == 500
